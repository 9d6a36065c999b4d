// @ts-check
// New job: pick or drop files, folders (sub-folders kept as paths) and ZIPs; each goes straight
// to storage through its signed URL with its own progress; retry a failed one, or cancel all.
import { createJob, deleteJob, finalizeUploads } from "../api/jobs.js";
import { uploadFile } from "../api/uploads.js";
import { newRequestId } from "../api.js";
import { navigate } from "../router.js";
import { h, replace, errorBox, errorText, formatBytes, progressBar } from "../ui.js";

const PARALLEL_UPLOADS = 3;

/**
 * @typedef {{path: string, file: File, loaded: number, state: "waiting" | "uploading" | "done" | "failed",
 *   error: string, target?: any, abort?: () => void, row?: HTMLElement}} Item
 */

/** @param {HTMLElement} main */
export function renderNewJob(main) {
  /** @type {Map<string, Item>} */
  const items = new Map();
  /** @type {string} */
  let jobName = "";
  let cancelled = false;
  let busy = false;
  /** Each start and each cancel counts one: a start's late job creation sees it was cancelled. */
  let attempt = 0;
  /** The uploads were finalized (or are being): the job is analysed, and leaving keeps it. */
  let finalized = false;

  const nameInput = /** @type {HTMLInputElement} */ (
    h("input", { id: "job-name", type: "text", maxlength: 200, placeholder: "e.g. March invoices" })
  );
  const filesInput = /** @type {HTMLInputElement} */ (
    h("input", {
      id: "pick-files",
      type: "file",
      multiple: true,
      accept: ".pdf,.zip,.png,.jpg,.jpeg,.tif,.tiff,.webp,application/pdf,application/zip,image/*",
    })
  );
  const folderInput = /** @type {HTMLInputElement} */ (
    h("input", { id: "pick-folder", type: "file", webkitdirectory: true, multiple: true })
  );
  const list = h("tbody");
  const summary = h("p", { "aria-live": "polite", class: "muted" }, "No files chosen yet.");
  const total = /** @type {HTMLProgressElement} */ (progressBar("Total upload progress", 0, 1));
  const status = h("div", { "aria-live": "polite" });
  const startButton = /** @type {HTMLButtonElement} */ (
    h("button", { type: "button", class: "primary", onclick: start, disabled: true }, "Upload and analyse")
  );
  const cancelButton = /** @type {HTMLButtonElement} */ (
    h("button", { type: "button", onclick: cancel, disabled: true }, "Cancel upload")
  );

  filesInput.addEventListener("change", () => {
    addFiles([...(filesInput.files || [])].map((f) => [f.name, f]));
    filesInput.value = "";
  });
  folderInput.addEventListener("change", () => {
    addFiles([...(folderInput.files || [])].map((f) => [f.webkitRelativePath || f.name, f]));
    folderInput.value = "";
  });

  const filesLabel = h("label", { for: "pick-files", class: "button" }, "Choose files");
  const folderLabel = h("label", { for: "pick-folder", class: "button" }, "Choose a folder");

  const drop = h(
    "div",
    {
      class: "dropzone",
      role: "region",
      "aria-label": "Drop zone",
      ondragover: (/** @type {DragEvent} */ e) => {
        e.preventDefault();
        drop.classList.add("over");
      },
      ondragleave: () => drop.classList.remove("over"),
      ondrop: async (/** @type {DragEvent} */ e) => {
        e.preventDefault();
        drop.classList.remove("over");
        addFiles(await droppedFiles(e.dataTransfer));
      },
    },
    h("p", {}, "Drop files, folders or ZIP archives here, or choose them:"),
    h(
      "div",
      { class: "pickers" },
      filesLabel,
      filesInput,
      folderLabel,
      folderInput,
    ),
  );

  replace(
    main,
    h("h1", {}, "New job"),
    h("div", { class: "field" }, h("label", { for: "job-name" }, "Job name"), nameInput),
    drop,
    summary,
    // Scrolls by itself on a narrow screen rather than widen the page.
    h(
      "div",
      { class: "table-scroll" },
      h(
      "table",
      { class: "uploads" },
      h("caption", { class: "visually-hidden" }, "Files to upload"),
      h(
        "thead",
        {},
        h("tr", {}, ["File", "Size", "Progress", "State", ""].map((t) => h("th", { scope: "col" }, t))),
      ),
      list,
      ),
    ),
    h("div", { class: "field" }, h("span", {}, "Total"), total),
    h("div", { class: "actions" }, startButton, cancelButton),
    status,
  );

  /** @param {[string, File][]} picked */
  function addFiles(picked) {
    if (busy || jobName) return;
    for (const [path, file] of picked) {
      const clean = path.replace(/^\/+/, "");
      if (!items.has(clean)) items.set(clean, { path: clean, file, loaded: 0, state: "waiting", error: "" });
    }
    redraw();
  }

  function redraw() {
    replace(list, [...items.values()].map(row));
    const bytes = [...items.values()].reduce((sum, i) => sum + i.file.size, 0);
    summary.textContent = items.size
      ? `${items.size} file${items.size === 1 ? "" : "s"}, ${formatBytes(bytes)}`
      : "No files chosen yet.";
    startButton.disabled = busy || !items.size || Boolean(jobName);
    // Files picked once the job is made are not part of it: the pickers looked active and
    // what was picked was silently ignored.
    const closed = busy || Boolean(jobName);
    filesInput.disabled = closed;
    folderInput.disabled = closed;
    filesLabel.setAttribute("aria-disabled", String(closed));
    folderLabel.setAttribute("aria-disabled", String(closed));
    updateTotal();
  }

  function updateTotal() {
    const all = [...items.values()];
    total.max = Math.max(all.reduce((sum, i) => sum + i.file.size, 0), 1);
    total.value = all.reduce((sum, i) => sum + i.loaded, 0);
  }

  /** @param {Item} item */
  function row(item) {
    const bar = progressBar(`Upload progress of ${item.path}`, item.loaded, item.file.size);
    const state = h("td", {}, stateWords(item));
    const action =
      item.state === "failed" && jobName
        ? // The path in the accessible name only: "Retry <a long path>" made the page 2731 px wide on a phone.
          h("button", { type: "button", "aria-label": `Retry ${item.path}`, onclick: () => retry(item) }, "Retry")
        : !jobName
          ? h(
              "button",
              {
                type: "button",
                class: "link",
                "aria-label": `Remove ${item.path}`,
                onclick: () => {
                  items.delete(item.path);
                  redraw();
                },
              },
              "Remove",
            )
          : "";
    const tr = h(
      "tr",
      {},
      h("td", { class: "path" }, item.path),
      h("td", {}, formatBytes(item.file.size)),
      h("td", {}, bar),
      state,
      h("td", {}, action),
    );
    item.row = tr;
    return tr;
  }

  /** @param {Item} item */
  function stateWords(item) {
    if (item.state === "failed") return h("span", { class: "error" }, `Failed: ${item.error}`);
    return { waiting: "Waiting", uploading: "Uploading", done: "Uploaded" }[item.state];
  }

  /** @param {Item} item */
  function refreshRow(item) {
    if (item.row) item.row.replaceWith(row(item));
    updateTotal();
  }

  async function start() {
    const mine = ++attempt;
    busy = true;
    cancelled = false;
    startButton.disabled = true;
    cancelButton.disabled = false;
    replace(status, h("p", {}, "Creating the job…"));
    const all = [...items.values()];
    try {
      const created = await createJob({
        displayName: nameInput.value.trim() || defaultName(all),
        files: all.map((i) => ({
          path: i.path,
          sizeBytes: i.file.size,
          contentType: i.file.type || "application/octet-stream",
        })),
        requestId: newRequestId(),
      });
      if (mine !== attempt) {
        // Cancelled while the job was being created: the page already said nothing was kept,
        // so the job made meanwhile goes too (it stayed waiting for uploads, and the page
        // said "Uploading…" with no upload and no way to cancel).
        await deleteJob(created.job.name).catch(() => {});
        return;
      }
      jobName = created.job.name;
      for (const target of created.uploadTargets || []) {
        const item = items.get(target.path);
        if (item) item.target = target;
      }
    } catch (error) {
      if (mine !== attempt) return; // cancelled meanwhile: the page says so already
      busy = false;
      cancelButton.disabled = true;
      replace(status, errorBox(error));
      redraw();
      return;
    }
    nameInput.disabled = true;
    redraw();
    replace(status, h("p", {}, "Uploading…"));
    await uploadAll();
  }

  async function uploadAll() {
    const queue = [...items.values()].filter((i) => i.state === "waiting");
    const worker = async () => {
      for (let item = queue.shift(); item && !cancelled; item = queue.shift()) await upload(item);
    };
    await Promise.all(Array.from({ length: PARALLEL_UPLOADS }, worker));
    await finishIfDone();
  }

  /** @param {Item} item */
  async function upload(item) {
    item.state = "uploading";
    item.loaded = 0;
    refreshRow(item);
    const bar = () => item.row?.querySelector("progress");
    const task = uploadFile(item.target, item.file, (loaded) => {
      item.loaded = loaded;
      const b = bar();
      if (b) b.value = loaded;
      updateTotal();
    });
    item.abort = task.abort;
    try {
      await task.done;
      item.state = "done";
    } catch (error) {
      item.state = cancelled ? "waiting" : "failed";
      item.error = errorText(error);
    }
    refreshRow(item);
  }

  /** @param {Item} item */
  async function retry(item) {
    item.state = "waiting";
    await upload(item);
    await finishIfDone();
  }

  async function finishIfDone() {
    if (cancelled) return;
    const all = [...items.values()];
    if (all.some((i) => i.state === "uploading" || i.state === "waiting")) return;
    const failed = all.filter((i) => i.state === "failed").length;
    if (failed) {
      replace(
        status,
        h(
          "p",
          { class: "error", role: "alert" },
          `${failed} upload${failed === 1 ? "" : "s"} failed. Retry ${failed === 1 ? "it" : "them"}, or cancel.`,
        ),
      );
      return;
    }
    replace(status, h("p", {}, "All files uploaded; starting the analysis…"));
    // Set before the answer: a user who leaves meanwhile leaves a job that is being analysed.
    finalized = true;
    try {
      await finalizeUploads(jobName);
    } catch (error) {
      finalized = false;
      replace(status, errorBox(error));
      return;
    }
    await navigate(`/app/jobs/${jobName.split("/")[1]}/analysis`);
  }

  async function cancel() {
    cancelled = true;
    ++attempt;
    for (const item of items.values()) item.abort?.();
    cancelButton.disabled = true;
    if (jobName) {
      try {
        await deleteJob(jobName);
      } catch (error) {
        replace(status, errorBox(error));
        return;
      }
    }
    jobName = "";
    busy = false;
    nameInput.disabled = false;
    for (const item of items.values()) Object.assign(item, { state: "waiting", loaded: 0, error: "" });
    redraw();
    replace(status, h("p", {}, "Upload cancelled; nothing was kept."));
  }

  /** Until the uploads are finalized, leaving the page loses them: the browser asks first. */
  const unfinished = () => busy && !finalized;
  /** @param {BeforeUnloadEvent} event */
  const warn = (event) => {
    if (!unfinished()) return;
    event.preventDefault();
    event.returnValue = ""; // Chromium asks only when this is set too
  };
  window.addEventListener("beforeunload", warn);

  return () => {
    window.removeEventListener("beforeunload", warn);
    // Leaving the page mid-upload cancels as "Cancel upload" does: the uploads stopped, and
    // the job went on waiting for them on the dashboard with no way to resume it.
    const leftUnfinished = unfinished();
    cancelled = true;
    ++attempt; // a job still being created is deleted when its creation answers (see start)
    for (const item of items.values()) if (item.state === "uploading") item.abort?.();
    if (leftUnfinished && jobName) deleteJob(jobName).catch(() => {});
  };
}

/** @param {Item[]} items */
function defaultName(items) {
  const first = items[0]?.path.split("/")[0] || "Upload";
  return items.length > 1 ? `${first} and ${items.length - 1} more` : first;
}

/**
 * Files of a drop, walking dropped folders (their paths keep the sub-folders).
 * @param {DataTransfer | null} transfer
 * @returns {Promise<[string, File][]>}
 */
async function droppedFiles(transfer) {
  if (!transfer) return [];
  /** @type {[string, File][]} */
  const found = [];
  const entries = [...transfer.items]
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
    .filter(Boolean);
  if (!entries.length) return [...transfer.files].map((f) => [f.name, f]);
  /** @param {any} entry @param {string} prefix */
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      found.push([prefix + entry.name, /** @type {File} */ (file)]);
      return;
    }
    const reader = entry.createReader();
    for (;;) {
      // readEntries answers in batches until an empty one.
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
    }
  };
  for (const entry of entries) await walk(entry, "");
  return found;
}
