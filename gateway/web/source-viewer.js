// @ts-check
// The source document beside its values: a result's file, page by page (PDF pages and images
// drawn as PNGs by the server), with zoom. The image arrives with the credential header and is
// shown from a blob: URL (the CSP's img-src allows 'self' and blob: only). Opened for one
// value's evidence, it turns to the cited file and page, outlines the box (fractions of the
// page, so it scales with the image at any zoom) and shows the quote.
import { renderPage } from "./api/files.js";
import { retryWhileBusy } from "./busy-retry.js";
import { h, replace, errorBox } from "./ui.js";

const ZOOMS = [50, 75, 100, 125, 150, 200, 300];
// Drawn this wide up to 150 %, twice as wide beyond, so zooming in stays sharp.
const WIDTH = 1200;

export function sourceViewer() {
  const heading = h("h2", { id: "viewer-heading" }, "Source document");
  const body = h("div", { class: "viewer-body" });
  const element = h(
    "section",
    { class: "viewer card", "aria-labelledby": "viewer-heading", hidden: true },
    h(
      "div",
      { class: "toolbar" },
      heading,
      h("button", { type: "button", onclick: () => close() }, "Close source"),
    ),
    body,
  );
  /** @type {{name: string, path: string}[]} */
  let files = [];
  let fileIndex = 0;
  let page = 1;
  let pageCount = 1;
  let zoom = 100;
  let objectUrl = "";
  let sequence = 0;
  /** Aborts the page being fetched: a page turned, the viewer closed, or the page left. */
  let fetching = new AbortController();
  /** @type {Record<string, unknown>} */
  let values = {};
  /** The result shown (its name) and its fields, to show its values again once corrected. */
  let shownName = "";
  /** @type {string[]} */
  let shownFields = [];
  /** @type {HTMLElement | null} */
  let opener = null;
  /** @typedef {{field: string, file?: string, page?: number, quote?: string, box?: {left?: number, top?: number, right?: number, bottom?: number}, verified?: boolean, corrected?: boolean}} Cited */
  /** @type {Cited | null} */
  let cited = null;

  /**
   * Shows a result: its files, the first page of the first, and its values beside them.
   * @param {{name?: string, files?: string[], filePaths?: string[], values?: Record<string, unknown>}} result
   * @param {string[]} fieldNames @param {HTMLElement | null} from the control that opened it
   * @param {Cited | null} [evidence] a value's evidence: open at its file and page, box drawn
   * @param {boolean} [focus] move the focus to the viewer (not while the review walk has it)
   */
  function show(result, fieldNames, from, evidence = null, focus = true) {
    const paths = result.filePaths || [];
    files = (result.files || []).map((name, i) => ({ name, path: paths[i] || name }));
    values = Object.fromEntries(fieldNames.map((n) => [n, result.values?.[n]]));
    shownName = result.name || "";
    shownFields = fieldNames;
    cited = evidence;
    fileIndex = Math.max(0, evidence?.file ? files.findIndex((f) => f.name === evidence.file) : 0);
    page = evidence?.page || 1;
    zoom = 100;
    opener = from;
    element.hidden = false;
    load();
    if (focus) heading.focus();
  }

  /**
   * Shows a result's values again if it is the one open: they were copied when it opened, and
   * a correction made in the table left the old values beside the page.
   * @param {{name?: string, values?: Record<string, unknown>}} result
   */
  function update(result) {
    if (element.hidden || !shownName || result.name !== shownName) return;
    values = Object.fromEntries(shownFields.map((n) => [n, result.values?.[n]]));
    body.querySelector(".viewer-values")?.replaceWith(valueList());
  }

  function close() {
    element.hidden = true;
    stop();
    replace(body);
    opener?.focus();
  }

  /**
   * Lets go of everything the viewer holds: the image shown, and the one on its way. An image
   * that arrived after the viewer was closed (or its page left) was kept and never revoked.
   */
  function stop() {
    ++sequence; // the load out, if any, is stale now: it revokes what it gets
    fetching.abort();
    release();
  }

  function release() {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = "";
  }

  async function load() {
    const mine = ++sequence;
    fetching.abort(); // the page asked for before this one is not wanted any more
    fetching = new AbortController();
    const file = files[fileIndex];
    if (!file) {
      // No file to show: a review item cites no page and its row is not on the table's page.
      // The previous value's page, box and quote stayed under their heading, as this one's.
      heading.textContent = "Source document";
      release();
      replace(
        body,
        h(
          "p",
          { class: "evidence-quote" },
          cited
            ? `No page was cited for ${cited.field}: open its document from its row's Source in the results.`
            : "This result has no document to show.",
        ),
      );
      return;
    }
    heading.textContent = `Source: ${file.path}`;
    draw(h("p", {}, "Drawing the page…"));
    try {
      const signal = fetching.signal;
      const width = zoom > 150 ? WIDTH * 2 : WIDTH;
      // A 429 means draws of pages already left are still running on the server: asked
      // again shortly, as long as this page is still the one wanted.
      const drawn = await retryWhileBusy(() => renderPage(file.name, { page, width, signal }), {
        signal,
        wanted: () => mine === sequence,
      });
      if (mine !== sequence) {
        URL.revokeObjectURL(drawn.url);
        return;
      }
      release();
      objectUrl = drawn.url;
      pageCount = drawn.pageCount;
      const image = h("img", {
        src: drawn.url,
        alt: `Page ${page} of ${file.path}`,
        width: String(drawn.width),
        height: String(drawn.height),
        // The pixel size the server drew, for drawing evidence on it later.
        "data-width": String(drawn.width),
        "data-height": String(drawn.height),
      });
      const frame = h("div", { class: "page-frame" }, image, evidenceBox());
      frame.style.width = `${zoom}%`;
      draw(h("div", { class: "viewer-page", tabindex: "0", role: "region", "aria-label": "Page image" }, frame));
    } catch (error) {
      if (mine === sequence) draw(errorBox(error));
    }
  }

  /** The cited box over the image, when the cited page is the one shown. */
  function evidenceBox() {
    const box = cited?.box;
    if (!cited || !box || files[fileIndex]?.name !== cited.file || page !== (cited.page || 1)) return null;
    const outline = h("div", { class: "evidence-box", role: "img", "aria-label": `Where ${cited.field} is printed` });
    // Style properties set through the CSSOM, which the CSP allows (no style attribute).
    outline.style.left = `${(box.left || 0) * 100}%`;
    outline.style.top = `${(box.top || 0) * 100}%`;
    outline.style.width = `${Math.max(0, (box.right || 0) - (box.left || 0)) * 100}%`;
    outline.style.height = `${Math.max(0, (box.bottom || 0) - (box.top || 0)) * 100}%`;
    return outline;
  }

  /** @param {HTMLElement} pageArea */
  function draw(pageArea) {
    const controls = h(
      "div",
      { class: "toolbar" },
      files.length > 1
        ? h(
            "label",
            {},
            "File ",
            h(
              "select",
              {
                onchange: (/** @type {Event} */ event) => {
                  fileIndex = Number(/** @type {HTMLSelectElement} */ (event.target).value);
                  page = 1;
                  load();
                },
              },
              files.map((f, i) => h("option", { value: String(i), selected: i === fileIndex }, f.path)),
            ),
          )
        : null,
      h("button", { type: "button", disabled: page <= 1, onclick: () => turn(-1) }, "Previous page"),
      h("span", { "aria-live": "polite" }, `Page ${page} of ${pageCount}`),
      h("button", { type: "button", disabled: page >= pageCount, onclick: () => turn(1) }, "Next page"),
      h("button", { type: "button", disabled: zoom <= ZOOMS[0], onclick: () => zoomBy(-1) }, "Zoom out"),
      h("span", { "aria-label": "Zoom" }, `${zoom}%`),
      h("button", { type: "button", disabled: zoom >= ZOOMS[ZOOMS.length - 1], onclick: () => zoomBy(1) }, "Zoom in"),
      h("button", { type: "button", disabled: zoom === 100, onclick: () => zoomTo(100) }, "Fit width"),
    );
    const quote = cited
      ? h(
          "p",
          { class: "evidence-quote" },
          cited.quote
            ? [
                cited.corrected
                  ? `The extractor read ${cited.field} on page ${cited.page || "?"}: `
                  : `${cited.field} read from page ${cited.page || "?"}: `,
                h("q", {}, cited.quote),
              ]
            : `No quote was cited for ${cited.field}.`,
          // The evidence of a corrected value is the extractor's, for the value it replaced:
          // "(found in the document)" vouched for a value the quote does not hold.
          cited.corrected
            ? "; a person corrected the value since."
            : cited.verified
              ? " (found in the document)"
              : " (not found in the document: check it)",
        )
      : null;
    replace(body, controls, quote, h("div", { class: "viewer-split" }, valueList(), pageArea));
  }

  function valueList() {
    const file = files[fileIndex];
    return h(
      "dl",
      { class: "viewer-values", "aria-label": `Values of ${file ? file.path : "the result"}` },
      Object.entries(values).flatMap(([name, value]) => [
        h("dt", { class: cited?.field === name ? "cited" : null }, name),
        h("dd", {}, value === null || value === undefined ? "—" : String(value)),
      ]),
    );
  }

  /** @param {number} step */
  function turn(step) {
    page = Math.min(Math.max(1, page + step), pageCount);
    load();
  }

  /** @param {number} step */
  function zoomBy(step) {
    const at = ZOOMS.indexOf(zoom);
    zoomTo(ZOOMS[Math.min(Math.max(0, at + step), ZOOMS.length - 1)]);
  }

  /** @param {number} next */
  function zoomTo(next) {
    const sharper = (next > 150) !== (zoom > 150);
    zoom = next;
    if (sharper) {
      load();
      return;
    }
    const frame = /** @type {HTMLElement | null} */ (body.querySelector(".page-frame"));
    if (frame) frame.style.width = `${zoom}%`;
    const area = /** @type {HTMLElement} */ (body.querySelector(".viewer-page") || h("div"));
    draw(area);
  }

  heading.setAttribute("tabindex", "-1");
  // `close` for the page's cleanup: nothing stays held, nothing late is drawn.
  return { element, show, update, close: stop };
}
