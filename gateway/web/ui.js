// @ts-check
// Building DOM without HTML strings: every text goes in through textContent, so a file name
// or an extracted value holding markup shows as the characters it is.

/**
 * Creates an element. Props starting with "on" are listeners; `class`, `for`, aria-* and the
 * rest are attributes; booleans set or drop the attribute. Children are nodes or text.
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node | string | number | null | undefined | false | (Node | string)[])} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "value" && "value" in element) {
      /** @type {any} */ (element).value = value;
    } else if (key === "checked" || key === "selected") {
      /** @type {any} */ (element)[key] = Boolean(value);
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

/** @param {Element} parent @param {any[]} children */
function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. @param {Element} parent @param {...any} children */
export function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

/** A message box for an error (role=alert, so screen readers announce it). @param {unknown} error */
export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, errorText(error));
}

/**
 * An error with a way to try again: a load that failed while the server was down a moment
 * stayed failed once it was back, and only a reload left it.
 * @param {unknown} error @param {() => unknown} retry
 */
export function retryBox(error, retry) {
  return h(
    "div",
    { class: "retry" },
    errorBox(error),
    h("button", { type: "button", onclick: () => retry() }, "Try again"),
  );
}

/** @param {unknown} error */
export function errorText(error) {
  if (error && typeof error === "object" && "display" in error) return String(error.display);
  if (error instanceof Error) return error.message;
  return String(error);
}

const STATUS_WORDS = /** @type {Record<string, string>} */ ({
  PENDING_UPLOAD: "Waiting for uploads",
  ANALYZING: "Analysing",
  READY: "Ready to configure",
  QUEUED: "Queued",
  RUNNING: "Running",
  PAUSED: "Paused",
  COMPLETED: "Completed",
  PARTIALLY_COMPLETED: "Partially completed",
  FAILED: "Failed",
  CANCELLED: "Cancelled",
});

/** @param {string} status */
export function statusWords(status) {
  return STATUS_WORDS[status] || status || "Unknown";
}

/** @param {string} status */
export function statusBadge(status) {
  return h("span", { class: `badge status-${(status || "").toLowerCase()}` }, statusWords(status));
}

/** @param {string | undefined} iso */
export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** @param {number} bytes */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1024;
    unit += 1;
  } while (value >= 1024 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A labelled progress bar. @param {string} label @param {number} value @param {number} max */
export function progressBar(label, value, max) {
  return h("progress", { "aria-label": label, value: String(value), max: String(Math.max(max, 1)) });
}

/**
 * Asks for confirmation in a modal <dialog>; resolves true when confirmed.
 * @param {string} question @param {string} confirmLabel
 * @param {string} [keepLabel] the way back; "Cancel" read as the action when it is "Cancel job"
 * @returns {Promise<boolean>}
 */
export function confirmDialog(question, confirmLabel, keepLabel = "Cancel") {
  return new Promise((resolve) => {
    const dialog = /** @type {HTMLDialogElement} */ (
      h(
        "dialog",
        { "aria-labelledby": "confirm-question" },
        h("p", { id: "confirm-question" }, question),
        h(
          "form",
          { method: "dialog", class: "actions" },
          h("button", { value: "cancel", type: "submit" }, keepLabel),
          h("button", { value: "confirm", type: "submit", class: "danger" }, confirmLabel),
        ),
      )
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Saves a Blob as a download with the given file name. @param {Blob} blob @param {string} filename */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Wraps a loader so that only its latest call's answer counts: a page that loads again (a
 * filter changed, another page asked for, a live refresh, another file or result chosen)
 * while an earlier load is still waiting would otherwise show whichever answer comes last.
 * Earlier calls resolve to `undefined` once a later one was made; `forget()` makes every
 * call so far an earlier one (a panel closed while its load was out shows nothing late).
 * @template {any[]} A
 * @template T
 * @param {(...args: A) => Promise<T>} fetch
 * @returns {((...args: A) => Promise<T | undefined>) & {forget: () => void}}
 */
export function latestOnly(fetch) {
  let calls = 0;
  /** @param {A} args */
  const latest = async (...args) => {
    const call = ++calls;
    try {
      const answer = await fetch(...args);
      return call === calls ? answer : undefined;
    } catch (error) {
      if (call === calls) throw error;
      return undefined;
    }
  };
  return Object.assign(latest, { forget: () => void ++calls });
}

/**
 * Wraps a click or submit handler so that its action runs once at a time: the button that
 * started it is disabled until the answer is in, and a second start meanwhile is ignored. A
 * double-click on "Create key" or "Save template" sent the request twice and made two. The
 * second click of a double-click (its `detail` counts the clicks) is ignored even when the
 * first's answer came back before it: a small export was downloaded twice.
 * @param {(event: Event) => unknown} action
 * @returns {(event: Event) => Promise<void>}
 */
export function oneAtATime(action) {
  let running = false;
  return async (event) => {
    if (running || (event instanceof MouseEvent && event.detail > 1)) {
      event.preventDefault(); // a form submitted again is not sent by the browser either
      return;
    }
    running = true;
    const control = /** @type {SubmitEvent} */ (event).submitter || event.currentTarget;
    const button = control instanceof HTMLButtonElement ? control : null;
    if (button) button.disabled = true;
    try {
      await action(event);
    } finally {
      running = false;
      if (button) button.disabled = false;
    }
  };
}
