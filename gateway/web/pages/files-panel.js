// @ts-check
// The configure page's files panel: the job's ready files as a folder tree (virtualised, paged
// from the API), how many tasks each grouping will run, and a preview of one file's values.
import { listFiles, previewExtraction } from "../api/files.js";
import { h, replace, errorBox } from "../ui.js";
import { virtualList } from "../virtual-list.js";

/** @typedef {{kind: "folder", folder: string, count: number} | {kind: "file", file: any}} Row */

/**
 * @param {{job: string, fields: () => any[], mode: () => string}} options
 */
export function filesPanel({ job, fields, mode }) {
  /** @type {any[]} */
  let files = [];
  /** @type {Set<string>} */
  const collapsed = new Set();
  let loading = true;
  const summary = h("p", { "aria-live": "polite" }, "Loading the files…");
  const preview = h("section", { class: "card preview", "aria-label": "Preview", hidden: true });
  /** @type {ReturnType<typeof virtualList<Row>>} */
  const list = virtualList({ label: "Files", renderRow: row });
  const element = h(
    "section",
    { "aria-labelledby": "files-heading" },
    h("h2", { id: "files-heading" }, "Files and tasks"),
    summary,
    list.element,
    preview,
  );

  /** @param {Row} item */
  function row(item) {
    if (item.kind === "folder") {
      const open = !collapsed.has(item.folder);
      const label = item.folder || "(top level)";
      return h(
        "li",
        { class: "folder" },
        h(
          "button",
          {
            type: "button",
            class: "link",
            "aria-expanded": String(open),
            onclick: () => {
              if (open) collapsed.add(item.folder);
              else collapsed.delete(item.folder);
              redraw();
            },
          },
          `${open ? "▾" : "▸"} ${label}/`,
        ),
        h("span", { class: "grow muted" }, `${item.count} file${item.count === 1 ? "" : "s"}`),
      );
    }
    const file = item.file;
    const base = file.originalPath.split("/").pop();
    return h(
      "li",
      {},
      h("span", { class: "grow path", title: file.originalPath }, `\u2003${base}`),
      h("span", { class: "muted" }, file.pageCount ? `${file.pageCount} p.` : ""),
      h(
        "button",
        { type: "button", "aria-label": `Preview ${file.originalPath}`, onclick: () => runPreview(file) },
        "Preview",
      ),
    );
  }

  function rows() {
    /** @type {Map<string, any[]>} */
    const byFolder = new Map();
    for (const file of files) {
      const list = byFolder.get(file.folder || "") || [];
      list.push(file);
      byFolder.set(file.folder || "", list);
    }
    /** @type {Row[]} */
    const out = [];
    for (const folder of [...byFolder.keys()].sort()) {
      const inFolder = /** @type {any[]} */ (byFolder.get(folder));
      out.push({ kind: "folder", folder, count: inFolder.length });
      if (!collapsed.has(folder)) for (const file of inFolder) out.push({ kind: "file", file });
    }
    return { out, folders: byFolder.size };
  }

  function redraw() {
    const { out, folders } = rows();
    list.setItems(out);
    const tasks = mode() === "TASK_MODE_COMBINED" ? folders : files.length;
    summary.textContent =
      `${files.length} file${files.length === 1 ? "" : "s"} ready in ${folders} folder${folders === 1 ? "" : "s"}` +
      `${loading ? " so far" : ""}; ${tasks} task${tasks === 1 ? "" : "s"} will run.`;
  }

  /** @param {any} file */
  async function runPreview(file) {
    preview.hidden = false;
    replace(preview, h("h3", {}, `Preview of ${file.originalPath}`), h("p", {}, "Extracting…"));
    try {
      const answer = await previewExtraction(file.name, fields());
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
    try {
      do {
        const page = await listFiles(job, { pageSize: 1000, pageToken });
        files.push(...(page.files || []).filter((/** @type {any} */ f) => f.status === "READY"));
        pageToken = page.nextPageToken || "";
        loading = Boolean(pageToken);
        redraw();
      } while (pageToken);
    } catch (error) {
      element.append(errorBox(error));
    }
  }

  load();
  return { element, redraw };
}
