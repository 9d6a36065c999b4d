// @ts-check
// The job page: live progress, pause/resume/cancel/retry, the results table (paged, sortable,
// edit in place) with each row's source document beside its values, exports, delete, and the
// job's events. Trust: each value's confidence and verification, its evidence in the source
// viewer, the review walk, each result's history with revert, re-runs, and golden documents.
import * as jobs from "../api/jobs.js";
import { changedMeanwhile, listResults, updateValue } from "../api/results.js";
import { createGoldenDocument, listDataTypes, listTemplates } from "../api/templates.js";
import { problemsPanel } from "../problems.js";
import { resultHistory } from "../result-history.js";
import { reviewWalk } from "../review-walk.js";
import { HELD, SNAPSHOT, modeWords, watchJob } from "../api/watch.js";
import { navigate } from "../router.js";
import { sourceViewer } from "../source-viewer.js";
import { compareKeys, sortKey as sortKeyOf } from "../sort-values.js";
import { h, replace, errorBox, statusBadge, progressBar, confirmDialog, saveBlob, formatTime, latestOnly, oneAtATime } from "../ui.js";

const PAGE_SIZE = 50;
const ACTIVE = new Set(["QUEUED", "RUNNING", "PAUSED"]);
const FINISHED = new Set(["COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELLED"]);

/**
 * A value's evidence as the source viewer draws it. A value a person set since keeps the
 * extractor's evidence: it shows where the extractor read the value it replaced.
 * @param {string} field @param {any} assessment @param {any} [row]
 */
function cited(field, assessment, row) {
  const e = assessment?.evidence || {};
  const corrected = (row?.correctedFields || []).includes(field);
  return { field, file: e.file, page: e.page, quote: e.quote, box: e.box, verified: Boolean(assessment?.verified), corrected };
}

/** @param {HTMLElement} main @param {{id: string}} params */
export async function renderJob(main, { id }) {
  const name = `jobs/${id}`;
  const [first, types, templatePage] = await Promise.all([jobs.getJob(name), listDataTypes(), listTemplates()]);
  const templates = templatePage.templates || [];
  let job = first;
  /** Data types by id: the JSON type turns an edited text into the value's type, and the
   * JSON type and format say how a column sorts. */
  const dataTypes = new Map((types.dataTypes || []).map((/** @type {any} */ t) => [t.id, t]));
  /** @param {string} field */
  const typeOf = (field) => dataTypes.get((job.fields || []).find((/** @type {any} */ f) => f.name === field)?.dataType);

  const heading = h("h1", {}, job.displayName || id);
  const summary = h("div", { class: "summary", "aria-live": "polite" });
  const actions = h("div", { class: "actions" });
  const notice = h("div", { "aria-live": "polite" });
  const results = h("div");
  const viewer = sourceViewer();
  const history = resultHistory({ onReverted: () => refresh() });
  const review = reviewWalk({
    job: name,
    onChanged: () => refresh(),
    showEvidence: (item) => {
      const row = rows.find((r) => r.name === item.result);
      const evidence = item.assessment?.evidence;
      const result = row || {
        files: evidence?.file ? [evidence.file] : [],
        filePaths: item.filePaths || [],
        values: { [item.field]: item.value },
      };
      viewer.show(result, row ? fieldNames() : [item.field], null, cited(item.field, item.assessment, row), false);
    },
    typed: (field, text) => typed(field, text),
  });
  const selection = h("div", { class: "toolbar" });
  const events = h("ol", { class: "events" });
  const live = h("p", { class: "muted" });
  // Why the job stands still while its tasks are held (the model's service down, say): the
  // stream's job.held, or the progress polled without it. None of them fails meanwhile.
  const held = h("div", { class: "held", role: "status" });
  /** @param {string[]} lines */
  const showHeld = (lines) => replace(held, ...lines.map((line) => h("p", {}, line)));
  const problems = problemsPanel(name);
  replace(
    main,
    heading,
    summary,
    live,
    held,
    actions,
    notice,
    problems.element,
    review.element,
    h("h2", {}, "Results"),
    selection,
    h("div", { class: "results-layout" }, results, h("div", { class: "side" }, viewer.element, history.element)),
    h("details", {}, h("summary", {}, "Events"), events),
  );

  // --- summary and actions ---
  /** Called after every summary update (starts or stops the live watch). */
  let onSummary = () => {};
  function drawSummary() {
    const c = job.counters || {};
    problems.update(c);
    const done = (c.tasksSucceeded || 0) + (c.tasksFailed || 0);
    replace(
      summary,
      h("p", {}, "Status: ", statusBadge(job.status)),
      progressBar("Extraction progress", done, c.tasksTotal || 0),
      h(
        "p",
        {},
        `${c.tasksSucceeded || 0} of ${c.tasksTotal || 0} tasks done`,
        c.tasksFailed ? `, ${c.tasksFailed} failed` : "",
        // The files that can be read, as the analysis page counts them: filesTotal counts every
        // file the job holds, an uploaded ZIP too beside the files unpacked from it.
        ` · ${c.filesReady || 0} ${c.filesReady === 1 ? "file" : "files"} ready`,
        c.filesFailed ? `, ${c.filesFailed} not usable` : "",
        ` · created ${formatTime(job.createTime)}`,
      ),
      h(
        "p",
        { class: c.valuesNeedingReview ? "needs-review" : "muted" },
        c.valuesNeedingReview === 1 ? "1 value needs review" : `${c.valuesNeedingReview || 0} values need review`,
        c.valuesNeedingReview
          ? h(
              "button",
              {
                type: "button",
                class: "primary review-start",
                onclick: () => review.open(() => summary.querySelector(".review-start") || main),
              },
              "Review values",
            )
          : null,
      ),
    );
    // Once per click: a double-click on Pause paused, then failed ("already paused").
    /** @param {string} label @param {() => Promise<any>} action @param {boolean} show */
    const button = (label, action, show) =>
      show ? h("button", { type: "button", onclick: oneAtATime(() => act(action)) }, label) : null;
    replace(
      actions,
      button("Pause", () => jobs.pauseJob(name), job.status === "QUEUED" || job.status === "RUNNING"),
      button("Resume", () => jobs.resumeJob(name), job.status === "PAUSED"),
      // Asked first, as Delete is: a cancelled job cannot be resumed, its tasks not yet run never run.
      button("Cancel job", cancelJob, ACTIVE.has(job.status)),
      // One action for failed tasks: RetryFailedTasks queues them again as they are. (RerunJob's
      // "failed tasks" did the same through re-extraction's machinery; re-run stays for results.)
      button("Retry failed tasks", () => retryFailed(c.tasksFailed || 0), Boolean(c.tasksFailed) && !ACTIVE.has(job.status)),
      // Once per click too: a double-click saved the export twice ("results (1).csv").
      h("button", { type: "button", onclick: oneAtATime(() => download("csv")) }, "Export CSV"),
      h("button", { type: "button", onclick: oneAtATime(() => download("xlsx")) }, "Export XLSX"),
      h("button", { type: "button", onclick: oneAtATime(() => download("json")) }, "Export JSON"),
      h("button", { type: "button", class: "danger", onclick: remove }, "Delete job"),
    );
    onSummary();
  }

  /** @param {() => Promise<any>} action */
  async function act(action) {
    replace(notice);
    // A refresh asked for before the action answers with the job as it was before it.
    latestJob.forget();
    try {
      job = await action();
      drawSummary();
    } catch (error) {
      replace(notice, errorBox(error));
    }
  }

  /**
   * Queues the failed tasks again, and says how many.
   * @param {number} failed
   */
  async function retryFailed(failed) {
    const answer = await jobs.retryFailedTasks(name);
    replace(notice, h("p", {}, failed === 1 ? "1 failed task queued again." : `${failed} failed tasks queued again.`));
    return answer;
  }

  /**
   * Re-extracts, and says what was queued and what was skipped as unchanged.
   * @param {{failedTasks?: boolean, results?: string[], force?: boolean}} choice
   */
  async function rerun(choice) {
    const answer = await jobs.rerunJob(name, choice);
    const queued = (answer.queuedTasks || []).length;
    const skipped = (answer.skippedTasks || []).length;
    replace(
      notice,
      h(
        "p",
        {},
        `${queued} task(s) queued again`,
        skipped ? `, ${skipped} skipped: unchanged since their last extraction (tick "Even if unchanged" to force).` : ".",
      ),
    );
    return answer.job;
  }

  // --- selected rows: re-run, mark golden ---
  /** @type {Set<string>} */
  const selected = new Set();
  const force = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", id: "rerun-force" }));
  const goldenTemplate = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      { id: "golden-template" },
      templates.map((/** @type {any} */ t) => h("option", { value: t.name, selected: t.name === job.template }, t.displayName)),
    )
  );
  /** @param {(names: string[]) => Promise<void>} action */
  const onSelected = async (action) => {
    if (!selected.size) {
      replace(notice, h("p", { class: "error", role: "alert" }, "Select one or more results first (the boxes in the File column)."));
      return;
    }
    try {
      await action([...selected]);
    } catch (error) {
      replace(notice, errorBox(error));
    }
  };
  replace(
    selection,
    h(
      "button",
      {
        type: "button",
        // Once per click, like every button that sends: a double-click re-ran twice.
        onclick: oneAtATime(() =>
          onSelected(async (names) => {
            job = await rerun({ results: names, force: force.checked });
            drawSummary();
          }),
        ),
      },
      "Re-run selected",
    ),
    h("label", {}, force, " Even if unchanged"),
    templates.length
      ? [
          h("label", { for: "golden-template" }, "Template"),
          goldenTemplate,
          h(
            "button",
            {
              type: "button",
              onclick: oneAtATime(() =>
                onSelected(async (names) => {
                  // One already golden for the template stopped the loop: the results after it
                  // were never marked, and the notice named only the first by its resource name.
                  let marked = 0;
                  let already = 0;
                  for (const result of names) {
                    try {
                      await createGoldenDocument(goldenTemplate.value, result);
                      marked += 1;
                    } catch (error) {
                      if (/** @type {any} */ (error)?.code !== "ALREADY_EXISTS") throw error;
                      already += 1;
                    }
                  }
                  const chosen = goldenTemplate.selectedOptions[0]?.textContent || "";
                  replace(
                    notice,
                    h(
                      "p",
                      {},
                      `Marked ${marked} result(s) golden for the template "${chosen}".`,
                      already ? ` ${already} already were.` : "",
                    ),
                  );
                }),
              ),
            },
            "Mark selected golden",
          ),
        ]
      : h("span", { class: "muted" }, "Create a template to keep golden documents."),
  );

  /** @param {"csv" | "xlsx" | "json"} format */
  async function download(format) {
    replace(notice, h("p", {}, `Preparing the ${format.toUpperCase()} export…`));
    try {
      const { blob, filename } = await jobs.exportResults(name, format);
      saveBlob(blob, filename);
      replace(notice, h("p", {}, `Downloaded ${filename}.`));
    } catch (error) {
      replace(notice, errorBox(error));
    }
  }

  /** Cancels after the user confirms; otherwise the job as it is. */
  async function cancelJob() {
    const sure = await confirmDialog(
      `Cancel "${job.displayName || id}"? Tasks not yet done will not run, and a cancelled job cannot be resumed.`,
      "Cancel job",
      "Keep running",
    );
    return sure ? jobs.cancelJob(name) : job;
  }

  async function remove() {
    const sure = await confirmDialog(
      `Delete "${job.displayName || id}" with its files and results? This cannot be undone.`,
      "Delete",
    );
    if (!sure) return;
    try {
      await jobs.deleteJob(name);
    } catch (error) {
      replace(notice, errorBox(error));
      return;
    }
    await navigate("/app/jobs");
  }

  // --- results ---
  /** @type {string[]} */
  const previous = [];
  let token = "";
  /** @type {any[]} */
  let rows = [];
  let nextToken = "";
  let sortKey = "";
  let sortDir = 1;
  let editing = false;
  const fieldNames = () => (job.fields || []).map((/** @type {any} */ f) => f.name);

  // A live refresh and a click on another page overlap: only the latest load's answer counts.
  const latestResults = latestOnly(() => listResults(name, { pageSize: PAGE_SIZE, pageToken: token }));

  /** @param {boolean} [turning] the user turned the page: drawn even over a value being edited */
  async function loadResults(turning = false) {
    try {
      const page = await latestResults();
      // A value being edited keeps its input: a live refresh that lands meanwhile is dropped.
      // A page the user turned to is drawn (Next did nothing while an input was open, yet
      // remembered the page: Previous then led to the second page again).
      if (page === undefined || (editing && !turning)) return;
      rows = page.results || [];
      nextToken = page.nextPageToken || "";
      drawResults();
      for (const row of rows) {
        viewer.update(row);
        history.update(row);
      }
    } catch (error) {
      replace(results, errorBox(error));
    }
  }

  /** The value button with the focus, to give it back once the table is drawn anew. */
  function focusedValue() {
    const active = document.activeElement;
    if (!(active instanceof HTMLElement) || !active.matches("button.value") || !results.contains(active)) return null;
    return { result: active.dataset.result || "", field: active.dataset.field || "" };
  }

  /** @param {{result: string, field: string} | null} target */
  function focusValue(target) {
    if (!target) return;
    const button = [...results.querySelectorAll("button.value")].find(
      (b) => b instanceof HTMLElement && b.dataset.result === target.result && b.dataset.field === target.field,
    );
    /** @type {HTMLElement | undefined} */ (button)?.focus();
  }

  /**
   * @param {{result: string, field: string} | null} [focus] the value whose button gets the
   * focus (by default the one that had it): a keyboard user went back to the top of the page
   * after every correction
   */
  function drawResults(focus = focusedValue()) {
    // Drawing anew drops any open input: a sort clicked while a value was open left `editing`
    // set, and the table stopped following the job's live results.
    editing = false;
    if (!rows.length && !token) {
      replace(
        results,
        h(
          "p",
          { class: "empty" },
          ACTIVE.has(job.status)
            ? "No results yet; they appear here as the files are processed."
            : "This job has no results.",
        ),
      );
      return;
    }
    // Rows are sorted where they are shown, a page at a time: ListResults has no order, and
    // reading every page of a job of thousands to sort it would undo the paging. The sort stays
    // as pages turn, and a note by the table says it is this page's order.
    const key = sortKey === "__file" ? (/** @type {any} */ row) => (row.filePaths || []).join(", ") : null;
    const valueKey = sortKeyOf(typeOf(sortKey));
    const sorted = sortKey
      ? [...rows].sort((a, b) =>
          compareKeys(key ? key(a) : valueKey(a.values?.[sortKey]), key ? key(b) : valueKey(b.values?.[sortKey]), sortDir),
        )
      : rows;
    const names = fieldNames();
    const label = sortKey === "__file" ? "File" : sortKey;
    /** @param {string} key @param {string} label */
    const header = (key, label) =>
      h(
        "th",
        {
          scope: "col",
          "aria-sort": sortKey === key ? (sortDir > 0 ? "ascending" : "descending") : "none",
          "aria-describedby": sortKey === key ? "sort-note" : null,
        },
        h(
          "button",
          {
            type: "button",
            class: "sort",
            onclick: () => {
              sortDir = sortKey === key ? -sortDir : 1;
              sortKey = key;
              drawResults();
              // The header clicked is drawn anew: the focus stays on it, not on the page.
              /** @type {HTMLElement | null} */ (results.querySelector("th[aria-sort]:not([aria-sort=none]) button"))?.focus();
            },
          },
          label,
        ),
      );
    replace(
      results,
      sortKey
        ? h(
            "p",
            { class: "muted sort-note", id: "sort-note" },
            `Sorted by ${label}, ${sortDir > 0 ? "ascending" : "descending"}, on this page only.`,
          )
        : null,
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { class: "results" },
          h("caption", { class: "visually-hidden" }, "Extracted values"),
          h("thead", {}, h("tr", {}, header("__file", "File"), names.map((n) => header(n, n)))),
          h("tbody", {}, sorted.map((row) => resultRow(row, names))),
        ),
      ),
      h(
        "div",
        { class: "pager" },
        // Once per click: the page stays on screen while the next one loads, and a double-click
        // on Next remembered the first page twice (Previous then led back to the second).
        h("button", { type: "button", disabled: !previous.length, onclick: oneAtATime(() => { token = previous.pop() || ""; return loadResults(true); }) }, "Previous results"),
        h("button", { type: "button", disabled: !nextToken, onclick: oneAtATime(() => { previous.push(token); token = nextToken; return loadResults(true); }) }, "Next results"),
      ),
    );
    focusValue(focus);
  }

  /** @param {any} row @param {string[]} names */
  function resultRow(row, names) {
    const path = (row.filePaths || []).join(", ");
    return h(
      "tr",
      {},
      h(
        "th",
        { scope: "row", class: "path" },
        h("input", {
          type: "checkbox",
          "aria-label": `Select ${path}`,
          checked: selected.has(row.name),
          onchange: (/** @type {Event} */ event) => {
            if (/** @type {HTMLInputElement} */ (event.target).checked) selected.add(row.name);
            else selected.delete(row.name);
          },
        }),
        " ",
        path,
        row.edited ? h("span", { class: "badge edited" }, "edited") : null,
        row.valuesNeedingReview ? h("span", { class: "badge edited" }, `${row.valuesNeedingReview} to review`) : null,
        row.skippedFiles?.length
          ? h("span", { class: "badge edited" }, row.skippedFiles.length === 1 ? "1 file left out" : `${row.skippedFiles.length} files left out`)
          : null,
        h(
          "button",
          {
            type: "button",
            class: "source",
            "aria-label": `Show the source of ${path}`,
            onclick: (/** @type {Event} */ event) =>
              viewer.show(row, names, /** @type {HTMLElement} */ (event.currentTarget)),
          },
          "Source",
        ),
        h(
          "button",
          {
            type: "button",
            class: "source",
            "aria-label": `History of ${path}`,
            onclick: (/** @type {Event} */ event) => history.show(row, /** @type {HTMLElement} */ (event.currentTarget)),
          },
          `History (v${row.version || 1})`,
        ),
        skippedNote(row, path),
      ),
      // A date is not broken inside ("2018-" above "01-06").
      names.map((field) => h("td", { class: isDate(typeOf(field)) ? "date" : null }, valueCell(row, field, path))),
    );
  }

  /**
   * The files a combined result was extracted without (they could not be read), each with
   * why: the values came from the other files, so the row says so where it is read.
   * @param {any} row @param {string} path
   */
  function skippedNote(row, path) {
    const skipped = row.skippedFiles || [];
    if (!skipped.length) return null;
    return h(
      "ul",
      { class: "skipped", "aria-label": `Files left out of ${path}` },
      skipped.map((/** @type {any} */ s) => h("li", {}, `Left out: ${s.path} — ${s.reason}`)),
    );
  }

  /** @param {any} row @param {string} field @param {string} path */
  function valueCell(row, field, path) {
    const value = row.values?.[field];
    const text = value === null || value === undefined ? "" : String(value);
    const cell = h("div", { class: "cell" });
    const show = () =>
      replace(
        cell,
        h(
          "button",
          {
            type: "button",
            class: "value",
            "aria-label": `Edit ${field} of ${path}`,
            "data-result": row.name,
            "data-field": field,
            onclick: edit,
          },
          text || "—",
        ),
        trustBadge(row, field, path),
      );
    function edit() {
      editing = true;
      const input = /** @type {HTMLInputElement} */ (
        h("input", { type: "text", value: text, "aria-label": `New ${field} of ${path}` })
      );
      const message = h("span");
      const save = async () => {
        try {
          const before = row.etag;
          const updated = await updateValue(row, field, typed(field, input.value));
          Object.assign(row, updated);
          editing = false;
          drawResults({ result: row.name, field });
          // The source viewer beside the table showed the values it was opened with, and the
          // history the versions before this one.
          viewer.update(row);
          history.update(row);
          // A corrected value is reviewed: the walk, if open, drops it, and the count of
          // values needing review goes down (it stayed as it was until the page was reloaded).
          review.corrected(row.name, field, before, row.etag);
          await refresh();
        } catch (error) {
          if (!changedMeanwhile(error)) {
            replace(message, errorBox(error));
            return;
          }
          // Someone corrected this result since the page read it (another tab, a colleague):
          // the table shows it as it is now, and nothing of theirs was overwritten.
          editing = false;
          await loadResults();
          focusValue({ result: row.name, field });
          replace(
            notice,
            h(
              "p",
              { class: "error", role: "alert" },
              `${path} was changed by someone else since this page read it, so your ${field} was not saved. ` +
                "Its values are shown as they are now; correct it again if you still need to.",
            ),
          );
        }
      };
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") save();
        if (event.key === "Escape") {
          editing = false;
          show();
          focusValue({ result: row.name, field });
        }
      });
      replace(
        cell,
        input,
        h("button", { type: "button", onclick: save }, "Save"),
        h("button", { type: "button", onclick: () => { editing = false; show(); focusValue({ result: row.name, field }); } }, "Cancel"),
        message,
      );
      input.focus();
    }
    show();
    return cell;
  }

  /**
   * How far a value can be trusted, as a button that opens its evidence in the source viewer.
   * @param {any} row @param {string} field @param {string} path
   */
  function trustBadge(row, field, path) {
    const a = row.assessments?.[field];
    if (!a) return null;
    const percent = Math.round((a.confidence || 0) * 100);
    // A corrected value is a person's: the confidence and verification were the extractor's,
    // about the value it replaced ("reviewed, confidence 99%" on a total typed in by hand).
    const corrected = (row.correctedFields || []).includes(field);
    const state = a.needsReview
      ? "needs review"
      : corrected
        ? `corrected by a person (the extractor's value had confidence ${percent}%)`
        : a.reviewed
          ? "reviewed"
          : a.verified
            ? "verified"
            : "not verified";
    const mark = a.needsReview ? "?" : a.reviewed || a.verified ? "✓" : "";
    // Why an empty value is empty though the extractor answered (the answer it could not use).
    const problem = a.problem && !a.reviewed ? `; ${a.problem}` : "";
    return h(
      "button",
      {
        type: "button",
        class: `badge trust ${a.needsReview ? "check" : a.verified || a.reviewed ? "ok" : ""}`,
        "aria-label": `Evidence for ${field} of ${path}: ${state}${corrected ? "" : `, confidence ${percent}%`}${problem}`,
        title: corrected ? "Corrected by a person" : problem ? problem.slice(2) : undefined,
        onclick: (/** @type {Event} */ event) =>
          viewer.show(row, fieldNames(), /** @type {HTMLElement} */ (event.currentTarget), cited(field, a, row)),
      },
      corrected ? `${mark}corrected` : `${mark}${percent}%`,
    );
  }

  /** @param {any} type */
  function isDate(type) {
    return type?.format === "date" || type?.format === "MM/DD/YYYY" || type?.format === "DD/MM/YYYY";
  }

  /** The edited text as the field's JSON type. @param {string} field @param {string} text */
  function typed(field, text) {
    const trimmed = text.trim();
    if (!trimmed) return null;
    const spec = (job.fields || []).find((/** @type {any} */ f) => f.name === field);
    const type = spec ? dataTypes.get(spec.dataType)?.jsonType : "string";
    if ((type === "number" || type === "integer") && !Number.isNaN(Number(trimmed))) return Number(trimmed);
    if (type === "boolean" && /^(true|false)$/i.test(trimmed)) return trimmed.toLowerCase() === "true";
    return text;
  }

  // --- events ---
  /** The newest event shown, when the list holds them all (the watch resumes after it). */
  let knownSequence = 0;
  async function loadEvents() {
    try {
      const page = await jobs.listEvents(name, { pageSize: 200 });
      const list = page.events || [];
      replace(events, list.map(eventItem));
      if (!page.nextPageToken && list.length) knownSequence = Number(list[list.length - 1].sequence);
    } catch (error) {
      replace(events, h("li", {}, errorBox(error)));
    }
  }

  /** @param {any} event */
  function eventItem(event) {
    const change = event.fromStatus || event.toStatus ? ` ${event.fromStatus || "—"} → ${event.toStatus || "—"}` : "";
    return h(
      "li",
      {},
      h("time", { datetime: event.createTime || "" }, formatTime(event.createTime)),
      ` ${event.kind}${change}`,
      event.message ? ` · ${event.message}` : "",
    );
  }

  // --- live updates ---
  let timer = 0;
  /** Set by the page's cleanup: an answer that comes after it starts nothing (see followLive). */
  let left = false;
  // Refreshes overlap (live events, the review walk's accepts, a revert): an earlier one's
  // late answer put back the counts and the buttons of before.
  const latestJob = latestOnly(jobs.getJob);
  async function refresh() {
    if (left) return;
    try {
      const answer = await latestJob(name);
      if (answer === undefined) return; // a later refresh is on its way
      job = answer;
      drawSummary();
      if (!editing) await loadResults();
    } catch (error) {
      replace(notice, errorBox(error));
    }
  }

  drawSummary();
  await Promise.all([loadResults(), loadEvents()]);
  // A finished job's stream is only its state, which the page has just read, and an open watch
  // holds a connection: watch only while the job can still change.
  /** @type {(() => void) | null} */
  let stopWatch = null;
  function followLive() {
    // An action answered after the user left (a re-run, a retry: the job runs again) started
    // a watch no cleanup would ever stop.
    if (left) return;
    const changing = !FINISHED.has(job.status);
    if (changing && !stopWatch) {
      stopWatch = watchJob(name, {
        afterSequence: knownSequence,
        onEvent: (event) => {
          if (event.kind === HELD) {
            showHeld(event.message ? event.message.split("\n") : []);
            return;
          }
          // Every (re)connected stream starts with the job's state: read the page from it.
          // It is no event of the job's trail, so it is not listed.
          const snapshot = event.kind === SNAPSHOT;
          if (!snapshot && Number(event.sequence) <= knownSequence) return;
          if (!snapshot) {
            knownSequence = Number(event.sequence);
            events.append(eventItem(event));
          }
          clearTimeout(timer);
          timer = window.setTimeout(refresh, 200);
        },
        onProgress: (progress) => {
          showHeld(progress.status === "RUNNING" ? progress.waitingOn || [] : []);
          if (progress.status !== job.status || progress.counters?.tasksSucceeded !== job.counters?.tasksSucceeded) refresh();
        },
        onMode: (mode) => {
          live.textContent = modeWords(mode);
        },
      });
    } else if (!changing && stopWatch) {
      stopWatch();
      stopWatch = null;
      live.textContent = "";
      showHeld([]);
    }
  }
  onSummary = followLive;
  followLive();
  return () => {
    left = true;
    clearTimeout(timer);
    stopWatch?.();
    stopWatch = null;
    viewer.close();
    review.stop();
  };
}
