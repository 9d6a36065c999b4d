// @ts-check
// The source document beside its values: a result's file, page by page (PDF pages and images
// drawn as PNGs by the server), with zoom. The image arrives with the credential header and is
// shown from a blob: URL (the CSP's img-src allows 'self' and blob: only).
import { renderPage } from "./api/files.js";
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
  /** @type {Record<string, unknown>} */
  let values = {};
  /** @type {HTMLElement | null} */
  let opener = null;

  /**
   * Shows a result: its files, the first page of the first, and its values beside them.
   * @param {{files?: string[], filePaths?: string[], values?: Record<string, unknown>}} result
   * @param {string[]} fieldNames @param {HTMLElement | null} from the control that opened it
   */
  function show(result, fieldNames, from) {
    const paths = result.filePaths || [];
    files = (result.files || []).map((name, i) => ({ name, path: paths[i] || name }));
    values = Object.fromEntries(fieldNames.map((n) => [n, result.values?.[n]]));
    fileIndex = 0;
    page = 1;
    zoom = 100;
    opener = from;
    element.hidden = false;
    load();
    heading.focus();
  }

  function close() {
    element.hidden = true;
    release();
    replace(body);
    opener?.focus();
  }

  function release() {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = "";
  }

  async function load() {
    const mine = ++sequence;
    const file = files[fileIndex];
    if (!file) return;
    heading.textContent = `Source: ${file.path}`;
    draw(h("p", {}, "Drawing the page…"));
    try {
      const drawn = await renderPage(file.name, { page, width: zoom > 150 ? WIDTH * 2 : WIDTH });
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
      image.style.width = `${zoom}%`;
      draw(h("div", { class: "viewer-page", tabindex: "0", role: "region", "aria-label": "Page image" }, image));
    } catch (error) {
      if (mine === sequence) draw(errorBox(error));
    }
  }

  /** @param {HTMLElement} pageArea */
  function draw(pageArea) {
    const file = files[fileIndex];
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
    const valueList = h(
      "dl",
      { class: "viewer-values", "aria-label": `Values of ${file ? file.path : "the result"}` },
      Object.entries(values).flatMap(([name, value]) => [
        h("dt", {}, name),
        h("dd", {}, value === null || value === undefined ? "—" : String(value)),
      ]),
    );
    replace(body, controls, h("div", { class: "viewer-split" }, valueList, pageArea));
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
    const image = /** @type {HTMLImageElement | null} */ (body.querySelector("img"));
    if (image) image.style.width = `${zoom}%`;
    const area = /** @type {HTMLElement} */ (body.querySelector(".viewer-page") || h("div"));
    draw(area);
  }

  heading.setAttribute("tabindex", "-1");
  return { element, show, close: release };
}
