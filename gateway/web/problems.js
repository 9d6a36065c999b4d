// @ts-check
// What could not be extracted, on the job page: the files that could not be used and the
// tasks that failed, each with why. A failed file had no row in the results, and its reason
// stood only in the collapsed list of events, in a worker's words among hundreds of others.
import { listAllFiles } from "./api/files.js";
import { listTasks } from "./api/jobs.js";
import { h, replace, retryBox } from "./ui.js";

// Listed at most; the rest are counted. A job of 100,000 files can fail thousands.
const SHOWN = 200;

// Task.failure: whether "Retry failed tasks" may help this one. The error alone did not say,
// and an unreadable file was retried as hopefully as a timeout.
const RETRY_WORDS = /** @type {Record<string, string>} */ ({
  PERMANENT: "will fail again as it is",
  EXHAUSTED: "ran out of attempts; a retry may succeed",
});

/**
 * A "What could not be extracted" disclosure, read when opened, and again when it is open
 * and the number of failures changes.
 * @param {string} job `jobs/{job}`
 */
export function problemsPanel(job) {
  const body = h("div");
  const summary = h("summary", {}, "What could not be extracted");
  const element = h("details", { class: "problems-panel", hidden: true }, summary, body);
  let loaded = false;
  let shown = -1; // the count the summary says
  element.addEventListener("toggle", () => {
    if (/** @type {HTMLDetailsElement} */ (element).open && !loaded) load();
  });

  async function load() {
    loaded = true;
    replace(body, h("p", { class: "muted" }, "Reading the failures…"));
    try {
      const files = await listAllFiles(job);
      const paths = new Map(files.map((f) => [f.name, f.originalPath]));
      const unusable = files.filter((f) => f.status === "FAILED" || f.status === "UNSUPPORTED");
      const failed = await failedTasks(job);
      const rows = [
        ...unusable.map(fileProblem),
        ...failed.map((t) =>
          h(
            "li",
            {},
            h("span", { class: "path" }, taskFiles(t, paths)),
            ": extraction failed",
            t.lastError ? ` (${t.lastError})` : "",
            RETRY_WORDS[t.failure] ? h("span", { class: "muted" }, ` — ${RETRY_WORDS[t.failure]}`) : null,
          ),
        ),
      ];
      const more = rows.length - SHOWN;
      replace(
        body,
        rows.length
          ? h("ul", { class: "problems" }, rows.slice(0, SHOWN))
          : h("p", { class: "empty" }, "Nothing failed."),
        more > 0 ? h("p", { class: "muted" }, `and ${more} more`) : null,
      );
    } catch (error) {
      loaded = false;
      replace(body, retryBox(error, load));
    }
  }

  return {
    element,
    /**
     * Shown when the job's counters say something failed; read again on the next opening.
     * @param {{filesFailed?: number, tasksFailed?: number}} counters
     */
    update(counters) {
      const count = (counters.filesFailed || 0) + (counters.tasksFailed || 0);
      if (count === shown) return; // every live update of the job comes here
      shown = count;
      element.hidden = count === 0;
      summary.textContent = `What could not be extracted (${count})`;
      loaded = false;
      if (/** @type {HTMLDetailsElement} */ (element).open && count) load();
    },
  };
}

/** Every FAILED task of the job, page by page. @param {string} job @returns {Promise<any[]>} */
async function failedTasks(job) {
  const failed = [];
  let pageToken = "";
  do {
    const page = await listTasks(job, { pageSize: 1000, pageToken });
    failed.push(...(page.tasks || []).filter((/** @type {any} */ t) => t.status === "FAILED"));
    pageToken = page.nextPageToken || "";
  } while (pageToken && failed.length < SHOWN);
  return failed;
}

/** A task's files by path (a combined task: its folder). @param {any} task @param {Map<string, string>} paths */
function taskFiles(task, paths) {
  if (task.mode === "TASK_MODE_COMBINED" && task.folder) return `${task.folder}/`;
  return (task.files || []).map((/** @type {string} */ f) => paths.get(f) || f).join(", ");
}

/** A file that could not be used, with why: one item of a list of problems. @param {any} file */
export function fileProblem(file) {
  return h(
    "li",
    {},
    h("span", { class: "path" }, file.originalPath),
    ": ",
    file.status === "UNSUPPORTED" ? "not a type that can be read" : "could not be analysed",
    file.error ? ` (${file.error})` : "",
  );
}
