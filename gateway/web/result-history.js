// @ts-check
// A result's history beside the table: every version (who, when, what changed from what to
// what, why), newest first, with a revert to any earlier one (itself a new version).
import { listVersions, revertResult } from "./api/results.js";
import { h, replace, errorBox, formatTime } from "./ui.js";

const KINDS = /** @type {Record<string, string>} */ ({
  EXTRACTED: "Extracted",
  CORRECTED: "Corrected",
  REVERTED: "Reverted",
  RERUN: "Re-run",
  IMPORTED: "Imported",
});

/** @param {unknown} value */
const shown = (value) => (value === null || value === undefined || value === "" ? "—" : String(value));

/** @param {{onReverted: () => Promise<void>}} options */
export function resultHistory({ onReverted }) {
  const heading = h("h2", { id: "history-heading", tabindex: "-1" }, "History");
  const body = h("div");
  const element = h(
    "section",
    { class: "history card", "aria-labelledby": "history-heading", hidden: true },
    h("div", { class: "toolbar" }, heading, h("button", { type: "button", onclick: () => close() }, "Close history")),
    body,
  );
  /** @type {HTMLElement | null} */
  let opener = null;
  /** @type {{name: string, path: string} | null} */
  let shownResult = null;

  /** @param {{name: string, filePaths?: string[]}} result @param {HTMLElement | null} from */
  async function show(result, from) {
    opener = from;
    shownResult = { name: result.name, path: (result.filePaths || []).join(", ") };
    heading.textContent = `History of ${shownResult.path}`;
    element.hidden = false;
    heading.focus();
    await load();
  }

  async function load() {
    if (!shownResult) return;
    const { name, path } = shownResult;
    replace(body, h("p", {}, "Loading the versions…"));
    let versions;
    try {
      versions = (await listVersions(name)).versions || [];
    } catch (error) {
      replace(body, errorBox(error));
      return;
    }
    const current = versions.length ? versions[versions.length - 1].version : 0;
    const status = h("div", { "aria-live": "polite" });
    replace(
      body,
      status,
      h(
        "ol",
        { reversed: true, "aria-label": `Versions of ${path}` },
        [...versions].reverse().map((/** @type {any} */ v) =>
          h(
            "li",
            {},
            h("strong", {}, `Version ${v.version}`),
            ` · ${KINDS[v.kind] || v.kind} by ${v.actor || "system"} · `,
            h("time", { datetime: v.createTime || "" }, formatTime(v.createTime)),
            v.version === current ? " (current)" : "",
            v.restoredVersion ? h("div", {}, `Restored version ${v.restoredVersion}`) : null,
            (v.changes || []).length
              ? h(
                  "ul",
                  {},
                  v.changes.map((/** @type {any} */ c) =>
                    h("li", {}, `${c.field}: ${shown(c.oldValue)} → ${shown(c.newValue)}`),
                  ),
                )
              : null,
            v.reason ? h("div", {}, `Reason: ${v.reason}`) : null,
            v.version !== current
              ? h(
                  "button",
                  {
                    type: "button",
                    onclick: async () => {
                      try {
                        await revertResult(name, v.name);
                      } catch (error) {
                        replace(status, errorBox(error));
                        return;
                      }
                      await onReverted();
                      await load();
                      heading.focus();
                    },
                  },
                  `Revert to version ${v.version}`,
                )
              : null,
          ),
        ),
      ),
    );
  }

  function close() {
    element.hidden = true;
    shownResult = null;
    replace(body);
    opener?.focus();
  }

  return { element, show, close };
}
