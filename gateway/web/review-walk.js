// @ts-check
// The review walk: a job's values that need review (ListReviewItems, most consequential first),
// one at a time, driven by the keyboard: j/k or the arrows move, a accepts, e corrects with a
// reason, Esc leaves. Every control is a button too, so nothing needs the shortcuts.
import { acceptReviewItem, changedMeanwhile, listReviewItems, updateValue } from "./api/results.js";
import { h, replace, errorBox, latestOnly } from "./ui.js";

const REASONS = /** @type {Record<string, string>} */ ({
  low_confidence: "low confidence",
  unverified: "not found in the document",
  file_skipped: "empty, and a file of the folder could not be read",
  unreadable: "empty: the extractor's answer could not be used",
});

/**
 * @param {{
 *   job: string,
 *   onChanged: () => Promise<void>,
 *   showEvidence: (item: any) => void,
 *   typed: (field: string, text: string) => unknown,
 * }} options
 */
export function reviewWalk({ job, onChanged, showEvidence, typed }) {
  const body = h("div");
  const status = h("p", { "aria-live": "polite", class: "muted" });
  // What the walk is on, said as it moves: the keys redraw the value under the focus, which a
  // screen reader does not read again, so j and k moved in silence.
  const announce = h("p", { "aria-live": "polite", class: "visually-hidden", "data-walk": "position" });
  const element = h(
    "section",
    { class: "review card", "aria-labelledby": "review-heading", tabindex: "0", hidden: true },
    h("h2", { id: "review-heading" }, "Review"),
    h("p", { class: "muted", id: "review-keys" }, "Keys: j or ↓ next · k or ↑ previous · a accept · e correct · Esc leave"),
    status,
    announce,
    body,
  );
  element.setAttribute("aria-describedby", "review-keys");
  /** @type {any[]} */
  let items = [];
  let index = 0;
  let correcting = false;
  /** @type {() => HTMLElement | null} */
  let opener = () => null;
  /** Items whose accept or correction is on its way: a key pressed twice sends it once. */
  const sending = new Set();

  // Opened twice in a row (a double-click on "Review values"), both loads filled the one list
  // and every value was there twice; left while loading, the late answer opened the walk's
  // evidence again. Only the latest opening's answer counts, and the pages of the others stop
  // coming (aborted) when the walk is opened again or left, or its page is left.
  let loading = new AbortController();
  const latestItems = latestOnly(async (/** @type {AbortSignal} */ signal) => {
    const all = [];
    let pageToken = "";
    do {
      const page = await listReviewItems(job, { pageSize: 200, pageToken, signal });
      all.push(...(page.reviewItems || []));
      pageToken = page.nextPageToken || "";
    } while (pageToken);
    return all;
  });

  /** The queue read anew; a reading still on its way stops, its answer unwanted. */
  function readQueue() {
    loading.abort();
    loading = new AbortController();
    return latestItems(loading.signal);
  }

  /**
   * @param {() => HTMLElement | null} from where the focus goes back on leaving (a function:
   * the page redraws the control that opened the walk as counts change)
   */
  async function open(from) {
    opener = from;
    element.hidden = false;
    replace(body, h("p", {}, "Loading the values to review…"));
    let loaded;
    try {
      loaded = await readQueue();
    } catch (error) {
      replace(body, errorBox(error));
      return;
    }
    if (loaded === undefined) return; // opened again, or left, meanwhile
    items = loaded;
    index = 0;
    draw();
    say();
    element.focus();
  }

  /** Stops the loading, if any: its answer is not wanted (see `open`). */
  function stop() {
    latestItems.forget();
    loading.abort();
  }

  function leave() {
    stop();
    element.hidden = true;
    correcting = false;
    replace(body);
    opener()?.focus();
  }

  /** @param {number} step */
  function move(step) {
    if (!items.length) return;
    index = Math.min(Math.max(0, index + step), items.length - 1);
    correcting = false;
    draw();
    say();
    // The buttons were drawn anew: the walk keeps the focus, so the keys go on working.
    element.focus();
  }

  /**
   * Drops an item after its accept or correction; the next one takes its place. By identity,
   * not position: the user may have moved on while the answer was coming.
   * @param {any} item
   */
  async function settled(item) {
    const at = items.indexOf(item);
    if (at < 0) return;
    items.splice(at, 1);
    if (at < index) index -= 1;
    index = Math.min(index, Math.max(0, items.length - 1));
    correcting = false;
    draw();
    say();
    element.focus();
    await onChanged();
  }

  /**
   * The result's etag after a change made on this page from `before`: the walk's other
   * values of that result read at `before` are still what they showed, and their accept or
   * correction would be refused as if someone else had changed the result. Only those: a
   * value read at another version (an earlier page of the queue, a table row newer than the
   * walk) may show what the result no longer holds, and must stay refused.
   * @param {string} result @param {string | undefined} before @param {string | undefined} after
   */
  function changedHere(result, before, after) {
    if (!before || !after) return;
    for (const other of items) if (other.result === result && other.etag === before) other.etag = after;
  }

  /**
   * A value corrected elsewhere on the page (in the results table) is reviewed: the walk
   * kept it, with the value it had, "Value 3 of 26" while the page said 25 were left, and
   * "a" accepted it again as if it still held what the walk showed.
   * @param {string} result @param {string} field
   * @param {string} [before] the result's etag the correction was sent with
   * @param {string} [after] the result's etag now
   */
  function corrected(result, field, before, after) {
    if (element.hidden) return;
    changedHere(result, before, after);
    const at = items.findIndex((i) => i.result === result && i.field === field);
    if (at < 0) return;
    const current = at === index;
    items.splice(at, 1);
    if (at < index) index -= 1;
    index = Math.min(index, Math.max(0, items.length - 1));
    if (current) correcting = false;
    // The value shown stays, with its evidence, unless it was the one corrected; a correction
    // being typed in the walk for another value keeps its input (drawn again on moving).
    if (current || !correcting) draw(current);
  }

  async function accept() {
    const item = items[index];
    if (!item || sending.has(item)) return;
    sending.add(item);
    try {
      const accepted = await acceptReviewItem(item);
      changedHere(item.result, item.etag, accepted?.etag);
    } catch (error) {
      if (changedMeanwhile(error)) return changedElsewhere(item, "accept");
      replace(status, errorBox(error));
      return;
    } finally {
      sending.delete(item);
    }
    status.textContent = `Accepted ${item.field} of ${paths(item)}.`;
    await settled(item);
  }

  /**
   * Someone changed the item's result since the walk read it (a colleague, another tab): what
   * the user accepted or corrected was a value that is no longer there. The walk reads the
   * queue again and shows the value as it is now, or says it needs no review any more.
   * @param {any} item @param {string} what "accept" or "correction"
   */
  async function changedElsewhere(item, what) {
    let loaded;
    try {
      loaded = await readQueue();
    } catch (error) {
      replace(status, errorBox(error));
      return;
    }
    if (loaded === undefined) return; // left, or opened again, meanwhile
    items = loaded;
    const at = items.findIndex((i) => i.result === item.result && i.field === item.field);
    index = at >= 0 ? at : Math.min(index, Math.max(0, items.length - 1));
    correcting = false;
    draw();
    say();
    element.focus();
    replace(
      status,
      h(
        "span",
        { class: "error", role: "alert" },
        `${item.field} of ${paths(item)} was changed since the walk read it (by someone else, or elsewhere on this page), so your ${what} was not saved. ` +
          (at >= 0 ? "It is shown as it is now." : "It no longer needs review."),
      ),
    );
    await onChanged();
  }

  function correct() {
    if (!items[index]) return;
    correcting = true;
    draw();
    /** @type {HTMLInputElement | null} */ (body.querySelector("input"))?.focus();
  }

  /** @param {string} text @param {string} reason */
  async function save(text, reason) {
    const item = items[index];
    if (!item || sending.has(item)) return;
    const value = typed(item.field, text);
    // The same value again changes nothing (no version): that is accepting it as it is.
    if (JSON.stringify(value ?? null) === JSON.stringify(item.value ?? null)) return accept();
    sending.add(item);
    try {
      const updated = await updateValue({ name: item.result, etag: item.etag }, item.field, value, reason);
      changedHere(item.result, item.etag, updated?.etag);
    } catch (error) {
      if (changedMeanwhile(error)) return changedElsewhere(item, "correction");
      replace(status, errorBox(error));
      return;
    } finally {
      sending.delete(item);
    }
    status.textContent = `Corrected ${item.field} of ${paths(item)}.`;
    await settled(item);
  }

  /** Says which value the walk is on (or that none is left) in the walk's live region. */
  function say() {
    const item = items[index];
    if (!item) {
      announce.textContent = "Nothing left to review.";
      return;
    }
    const value = item.value === null || item.value === undefined || item.value === "" ? "empty" : String(item.value);
    announce.textContent = `${item.field} of ${paths(item)}: ${value} (${index + 1} of ${items.length})`;
  }

  /** @param {boolean} [evidence] show the value's evidence in the source viewer */
  function draw(evidence = true) {
    const item = items[index];
    if (!item) {
      replace(body, h("p", {}, "Nothing left to review."));
      return;
    }
    const a = item.assessment || {};
    const value = item.value === null || item.value === undefined ? "" : String(item.value);
    /** @param {string} label @param {string} key @param {() => void} action */
    const button = (label, key, action) =>
      h("button", { type: "button", "aria-keyshortcuts": key, onclick: action }, label);
    replace(
      body,
      h("p", {}, `Value ${index + 1} of ${items.length}`),
      h(
        "dl",
        { class: "review-item" },
        h("dt", {}, "File"),
        h("dd", {}, paths(item)),
        h("dt", {}, "Field"),
        h("dd", {}, item.field),
        h("dt", {}, "Value"),
        h("dd", {}, value || "—"),
        h("dt", {}, "Why"),
        h("dd", {}, (item.reasons || []).map((/** @type {string} */ r) => REASONS[r] || r).join(", "), ` · confidence ${Math.round((a.confidence || 0) * 100)}%`),
        a.problem ? h("dt", {}, "Extractor's answer") : null,
        a.problem ? h("dd", { class: "problem" }, a.problem) : null,
      ),
      correcting ? correction(item, value) : null,
      h(
        "div",
        { class: "actions" },
        button("Previous value", "k", () => move(-1)),
        button("Next value", "j", () => move(1)),
        button("Accept value", "a", accept),
        button("Correct value", "e", correct),
        button("Leave review", "Escape", leave),
      ),
    );
    if (evidence) showEvidence(item);
  }

  /** @param {any} item @param {string} value */
  function correction(item, value) {
    const input = /** @type {HTMLInputElement} */ (
      h("input", { type: "text", id: "review-value", value })
    );
    const reason = /** @type {HTMLInputElement} */ (h("input", { type: "text", id: "review-reason" }));
    const submit = () => save(input.value, reason.value.trim());
    for (const field of [input, reason]) {
      field.addEventListener("keydown", (event) => {
        // Typing goes to the field; only Enter and Esc mean something here.
        event.stopPropagation();
        if (event.key === "Enter") submit();
        if (event.key === "Escape") {
          correcting = false;
          draw();
          element.focus();
        }
      });
    }
    return h(
      "div",
      { class: "toolbar" },
      h("label", { for: "review-value" }, `Corrected ${item.field}`),
      input,
      h("label", { for: "review-reason" }, "Reason"),
      reason,
      h("button", { type: "button", class: "primary", onclick: submit }, "Save correction"),
    );
  }

  element.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const key = event.key;
    if (key === "j" || key === "ArrowDown" || key === "ArrowRight") move(1);
    else if (key === "k" || key === "ArrowUp" || key === "ArrowLeft") move(-1);
    else if (key === "a") accept();
    else if (key === "e") correct();
    else if (key === "Escape") leave();
    else return;
    event.preventDefault();
  });

  return { element, open, leave, stop, corrected, isOpen: () => !element.hidden };
}

/** @param {any} item */
function paths(item) {
  return (item.filePaths || []).join(", ");
}
