// @ts-check
// The configure page's files and rules panel: the job's ready files as a folder tree
// (virtualised, paged from the API), per folder "one result per file" or "one result per
// folder", how many tasks will run (PlanTasks: the server's count, the one start uses), and
// a preview of one file's values.
import { listFiles, previewExtraction } from "../api/files.js";
import { planTasks } from "../api/jobs.js";
import { h, replace, errorBox, errorText, latestOnly } from "../ui.js";
import { virtualList } from "../virtual-list.js";

const INDIVIDUAL = "TASK_MODE_INDIVIDUAL";
const COMBINED = "TASK_MODE_COMBINED";
const MODE_WORDS = /** @type {Record<string, string>} */ ({
  [INDIVIDUAL]: "one result per file",
  [COMBINED]: "one result per folder",
});

/** @typedef {{kind: "folder", folder: string, depth: number, count: number} | {kind: "file", file: any, depth: number}} Row */

/** `a/b/c` -> [`a`, `a/b`, `a/b/c`]. @param {string} folder */
function withAncestors(folder) {
  const parts = folder ? folder.split("/") : [];
  return parts.map((_, i) => parts.slice(0, i + 1).join("/"));
}

/** Folders in tree order: a folder, then what is inside it. @param {string} a @param {string} b */
function treeOrder(a, b) {
  const x = a.replaceAll("/", "\u0001");
  const y = b.replaceAll("/", "\u0001");
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * @param {{job: string, fields: () => any[], mode: () => string, rules?: {folder: string, taskMode: string}[]}} options
 */
export function filesPanel({ job, fields, mode, rules: initial = [] }) {
  /** @type {any[]} */
  const files = [];
  /** The user's rules: folder -> task mode. */
  const rules = new Map(initial.map((r) => [r.folder, r.taskMode]));
  /** @type {Set<string>} */
  const collapsed = new Set();
  /** The server's plan: folder -> {taskMode, fileCount, taskCount}. @type {Map<string, any>} */
  let planned = new Map();
  let planSequence = 0;
  let planTimer = 0;
  /** Aborted when the page is left: the file pages stop coming and no count is asked for. */
  const leaving = new AbortController();
  const summary = h("p", { "aria-live": "polite" }, "Loading the files…");
  const preview = h("section", { class: "card preview", "aria-label": "Preview", hidden: true });
  /** @type {ReturnType<typeof virtualList<Row>>} */
  const list = virtualList({ label: "Files and folders", renderRow: row, rowHeight: 36 });
  const element = h(
    "section",
    { "aria-labelledby": "files-heading" },
    h("h2", { id: "files-heading" }, "Files and rules"),
    h(
      "p",
      { class: "muted" },
      "A folder's choice covers the folders inside it unless they have their own. " +
        "One result per folder gives one row for the files directly in each folder.",
    ),
    summary,
    list.element,
    preview,
  );

  /** The mode a folder gets from the rules above it (or the job's default). @param {string} folder */
  function inherited(folder) {
    const above = withAncestors(folder).slice(0, -1).reverse();
    for (const candidate of above) {
      const found = rules.get(candidate);
      if (found) return found;
    }
    return mode();
  }

  /** @param {Row} item */
  function row(item) {
    if (item.kind === "file") {
      const file = item.file;
      const base = file.originalPath.split("/").pop();
      const line = h(
        "li",
        {},
        h("span", { class: "grow path", title: file.originalPath }, base),
        h("span", { class: "muted" }, file.pageCount ? `${file.pageCount} p.` : ""),
        h(
          "button",
          { type: "button", "aria-label": `Preview ${file.originalPath}`, onclick: () => runPreview(file) },
          "Preview",
        ),
      );
      line.style.paddingInlineStart = `${1 + item.depth * 1.25}rem`;
      return line;
    }
    const { folder } = item;
    const open = !collapsed.has(folder);
    // The tree's indentation says where a folder is; its row names only its last part.
    const label = folder ? folder.split("/").pop() : "(top level)";
    const plan = planned.get(folder);
    const counts = [
      item.count ? `${item.count} file${item.count === 1 ? "" : "s"}` : "",
      plan ? `${plan.taskCount} task${plan.taskCount === 1 ? "" : "s"}` : "",
    ].filter(Boolean);
    const line = h(
      "li",
      { class: "folder" },
      h(
        "button",
        {
          type: "button",
          class: "link",
          title: folder,
          "aria-expanded": String(open),
          onclick: () => {
            if (open) collapsed.add(folder);
            else collapsed.delete(folder);
            redraw();
          },
        },
        `${open ? "▾" : "▸"} ${label}/`,
      ),
      h("span", { class: "grow muted" }, counts.join(" · ")),
      folder ? ruleChoice(folder) : h("span", { class: "muted" }, MODE_WORDS[mode()]),
    );
    line.style.paddingInlineStart = `${0.25 + item.depth * 1.25}rem`;
    return line;
  }

  /** @param {string} folder */
  function ruleChoice(folder) {
    const own = rules.get(folder) || "";
    const select = h(
      "select",
      {
        "aria-label": `Results for ${folder}`,
        onchange: (/** @type {Event} */ event) => {
          const value = /** @type {HTMLSelectElement} */ (event.target).value;
          if (value) rules.set(folder, value);
          else rules.delete(folder);
          redraw();
        },
      },
      h("option", { value: "", selected: !own }, `As above (${MODE_WORDS[inherited(folder)]})`),
      h("option", { value: INDIVIDUAL, selected: own === INDIVIDUAL }, "One result per file"),
      h("option", { value: COMBINED, selected: own === COMBINED }, "One result per folder"),
    );
    return select;
  }

  function rows() {
    /** @type {Map<string, any[]>} */
    const byFolder = new Map();
    for (const file of files) {
      const folder = file.folder || "";
      const inFolder = byFolder.get(folder) || [];
      inFolder.push(file);
      byFolder.set(folder, inFolder);
    }
    /** @type {Set<string>} */
    const folders = new Set([""]);
    for (const folder of byFolder.keys()) for (const f of withAncestors(folder)) folders.add(f);
    /** @type {Row[]} */
    const out = [];
    for (const folder of [...folders].sort(treeOrder)) {
      const hidden = withAncestors(folder).slice(0, -1).some((f) => collapsed.has(f)) || (folder && collapsed.has(""));
      if (hidden) continue;
      const depth = folder ? folder.split("/").length : 0;
      const inFolder = byFolder.get(folder) || [];
      out.push({ kind: "folder", folder, depth, count: inFolder.length });
      if (!collapsed.has(folder)) for (const file of inFolder) out.push({ kind: "file", file, depth: depth + 1 });
    }
    return out;
  }

  /** The rules as the API takes them, in tree order. */
  function folderRules() {
    return [...rules.entries()].sort(([a], [b]) => treeOrder(a, b)).map(([folder, taskMode]) => ({ folder, taskMode }));
  }

  function redraw() {
    list.setItems(rows());
    clearTimeout(planTimer);
    if (!leaving.signal.aborted) planTimer = window.setTimeout(plan, 120);
  }

  /** Asks the server how many tasks the choices on screen run; a stale answer is dropped. */
  async function plan() {
    const sequence = ++planSequence;
    if (leaving.signal.aborted) return;
    try {
      const answer = await planTasks(job, { taskMode: mode(), folderRules: folderRules() });
      if (sequence !== planSequence) return;
      planned = new Map((answer.folders || []).map((/** @type {any} */ f) => [f.folder || "", f]));
      const fileCount = answer.fileCount || 0;
      const folderCount = (answer.folders || []).length;
      const tasks = answer.taskCount || 0;
      summary.textContent =
        `${fileCount} file${fileCount === 1 ? "" : "s"} ready in ${folderCount} folder${folderCount === 1 ? "" : "s"}` +
        `; ${tasks} task${tasks === 1 ? "" : "s"} will run.`;
      list.setItems(rows());
    } catch (error) {
      if (sequence === planSequence) summary.textContent = errorText(error);
    }
  }

  // A preview takes seconds: a second file previewed meanwhile must not be replaced by the
  // first one's late answer.
  const latestPreview = latestOnly(previewExtraction);

  /** @param {any} file */
  async function runPreview(file) {
    preview.hidden = false;
    replace(preview, h("h3", {}, `Preview of ${file.originalPath}`), h("p", {}, "Extracting…"));
    try {
      const answer = await latestPreview(file.name, fields());
      if (answer === undefined) return; // another file's preview was asked for meanwhile
      const values = answer.values || {};
      replace(
        preview,
        h("h3", {}, `Preview of ${file.originalPath}`),
        h(
          "table",
          {},
          h("caption", { class: "visually-hidden" }, "Previewed values"),
          h("tbody", {}, Object.entries(values).map(([name, value]) =>
            h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, value === null ? "—" : String(value))),
          )),
        ),
        h("p", { class: "muted" }, `Extractor: ${answer.extractor || "unknown"}. Nothing was saved.`),
      );
    } catch (error) {
      replace(preview, h("h3", {}, `Preview of ${file.originalPath}`), errorBox(error));
    }
  }

  async function load() {
    let pageToken = "";
    // Busy while pages of files are still coming (assistive technology, and the bench, wait).
    list.element.setAttribute("aria-busy", "true");
    try {
      do {
        const page = await listFiles(job, { pageSize: 1000, pageToken, signal: leaving.signal });
        files.push(...(page.files || []).filter((/** @type {any} */ f) => f.status === "READY"));
        pageToken = page.nextPageToken || "";
        list.setItems(rows());
        // Planned once the first rows are on screen: the tree comes first, the count next.
        if (!planSequence) plan();
      } while (pageToken);
    } catch (error) {
      if (!leaving.signal.aborted) element.append(errorBox(error));
    } finally {
      list.element.setAttribute("aria-busy", "false");
    }
  }

  /**
   * The page's cleanup: a job of many files kept fetching page after page of them (and asked
   * for the count) after the user had left the page. A count or a preview on its way is
   * dropped when it comes.
   */
  function stop() {
    leaving.abort();
    clearTimeout(planTimer);
    ++planSequence; // a count on its way is dropped
    latestPreview.forget();
  }

  load().then(() => {
    if (!planSequence) plan(); // a job with no usable file still gets its count (0)
  });
  return { element, redraw, folderRules, stop };
}
