// @ts-check
// Dashboard: the user's jobs, paged, filtered by status.
import { listJobs } from "../api/jobs.js";
import { h, replace, retryBox, statusBadge, statusWords, formatTime, progressBar, latestOnly } from "../ui.js";

const PAGE_SIZE = 20;
const STATUSES = [
  "PENDING_UPLOAD",
  "ANALYZING",
  "READY",
  "QUEUED",
  "RUNNING",
  "PAUSED",
  "COMPLETED",
  "PARTIALLY_COMPLETED",
  "FAILED",
  "CANCELLED",
];

/** @param {HTMLElement} main */
export async function renderDashboard(main) {
  const params = new URLSearchParams(location.search);
  let status = params.get("status") || "";
  /** Page tokens of the pages before this one, to go back. @type {string[]} */
  let previous = [];
  let token = "";

  const filter = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      { id: "status-filter" },
      h("option", { value: "" }, "All statuses"),
      STATUSES.map((s) => h("option", { value: s, selected: s === status }, statusWords(s))),
    )
  );
  const body = h("div", { "aria-live": "polite" });
  filter.addEventListener("change", () => {
    status = filter.value;
    const url = status ? `/app/jobs?status=${status}` : "/app/jobs";
    history.replaceState(null, "", url);
    previous = [];
    token = "";
    load();
  });

  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Jobs"),
      h("a", { href: "/app/jobs/new", class: "button primary" }, "New job"),
    ),
    h("div", { class: "toolbar" }, h("label", { for: "status-filter" }, "Status"), filter),
    body,
  );

  // A filter changed twice in a row sends two requests, and the first one's answer may
  // come last: only the latest one's is shown.
  const latestJobs = latestOnly(() => listJobs({ pageSize: PAGE_SIZE, pageToken: token, status }));

  async function load() {
    replace(body, h("p", { class: "muted" }, "Loading jobs…"));
    let page;
    try {
      page = await latestJobs();
    } catch (error) {
      replace(body, retryBox(error, load));
      return;
    }
    if (page === undefined) return; // a later filter or page was asked for meanwhile
    const jobs = page.jobs || [];
    if (!jobs.length && !token) {
      replace(
        body,
        h(
          "p",
          { class: "empty" },
          status
            ? `No job is ${statusWords(status).toLowerCase()}. `
            : "You have no jobs yet. Upload documents to start one: ",
          h("a", { href: "/app/jobs/new" }, "create a new job"),
          ".",
        ),
      );
      return;
    }
    const total = page.totalSize || jobs.length;
    const first = previous.length * PAGE_SIZE + 1;
    replace(
      body,
      h(
        "table",
        { class: "jobs" },
        h("caption", { class: "visually-hidden" }, "Your jobs"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Name", "Status", "Files", "Progress", "Created"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", {}, jobs.map(jobRow)),
      ),
      h(
        "div",
        { class: "pager" },
        h("span", {}, `${first}–${first + jobs.length - 1} of ${total}`),
        h(
          "button",
          {
            type: "button",
            disabled: !previous.length,
            onclick: () => {
              token = previous.pop() || "";
              load();
            },
          },
          "Previous page",
        ),
        h(
          "button",
          {
            type: "button",
            disabled: !page.nextPageToken,
            onclick: () => {
              previous.push(token);
              token = page.nextPageToken;
              load();
            },
          },
          "Next page",
        ),
      ),
    );
  }
  await load();
}

/** @param {any} job */
function jobRow(job) {
  const id = job.name.split("/")[1];
  const c = job.counters || {};
  const tasksDone = (c.tasksSucceeded || 0) + (c.tasksFailed || 0);
  const progress = c.tasksTotal
    ? [progressBar(`Progress of ${job.displayName || id}`, tasksDone, c.tasksTotal), ` ${tasksDone}/${c.tasksTotal}`]
    : [h("span", { class: "muted" }, "—")];
  return h(
    "tr",
    {},
    h("td", {}, h("a", { href: `/app/jobs/${id}` }, job.displayName || id)),
    h("td", {}, statusBadge(job.status)),
    h("td", {}, String(c.filesTotal || 0)),
    h("td", {}, progress),
    h("td", {}, formatTime(job.createTime)),
  );
}
