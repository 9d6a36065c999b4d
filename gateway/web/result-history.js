// @ts-check
// A result's history beside the table: every version (who, when, what changed from what to
// what, why), newest first, with a revert to any earlier one (itself a new version).
import { changedMeanwhile, getResult, listVersions, revertResult } from "./api/results.js";
import { currentUser } from "./auth.js";
import { h, replace, errorBox, formatTime, latestOnly } from "./ui.js";

const KINDS = /** @type {Record<string, string>} */ ({
  EXTRACTED: "Extracted",
  CORRECTED: "Corrected",
  REVERTED: "Reverted",
  RERUN: "Re-run",
  IMPORTED: "Imported",
});

/** @param {unknown} value */
const shown = (value) => (value === null || value === undefined || value === "" ? "—" : String(value));

/**
 * Who made a version, in words: the signed-in user by name (the API names users by id, and
 * "Corrected by users/0b3c…" said nothing to the person who had made the correction).
 * @param {string | undefined} actor
 */
function who(actor) {
  if (!actor) return "system";
  const me = currentUser();
  if (me && actor === me.name) return `${me.displayName || me.email || "you"} (you)`;
  return actor;
}

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
  /** The result shown, with the etag read just before its versions were listed: a revert
   * sends it, so one made on a listing older than someone else's correction is refused
   * instead of undoing it unseen (read before the listing, a change in between is refused
   * too, never let through).
   * @type {{name: string, path: string, etag: string} | null} */
  let shownResult = null;
  /** The current version listed: a newer one (a correction in the table, the review walk, a
   * re-run) lists the versions again, or the panel called an old version current. */
  let shownVersion = 0;
  // Another result's history asked for (or the panel closed) while one loads: the earlier
  // answer would list its versions, and offer their reverts, under the later one's heading.
  const latestVersions = latestOnly(async (/** @type {string} */ name) => {
    const { etag } = await getResult(name);
    return { etag, answer: await listVersions(name) };
  });

  /** @param {{name: string, etag?: string, filePaths?: string[]}} result @param {HTMLElement | null} from */
  async function show(result, from) {
    opener = from;
    shownVersion = 0;
    shownResult = { name: result.name, path: (result.filePaths || []).join(", "), etag: "" };
    heading.textContent = `History of ${shownResult.path}`;
    element.hidden = false;
    heading.focus();
    await load();
  }

  /** @param {HTMLElement | null} [said] a message to show above the versions */
  async function load(said = null) {
    if (!shownResult) return;
    const { name, path } = shownResult;
    replace(body, h("p", {}, "Loading the versions…"));
    let read;
    try {
      read = await latestVersions(name);
    } catch (error) {
      replace(body, errorBox(error));
      return;
    }
    if (read === undefined) return; // another history was asked for meanwhile
    const { etag, answer } = read;
    if (shownResult?.name === name) shownResult.etag = etag || "";
    const versions = answer.versions || [];
    const current = versions.length ? versions[versions.length - 1].version : 0;
    shownVersion = current;
    const status = h("div", { "aria-live": "polite" }, said);
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
            ` · ${KINDS[v.kind] || v.kind} by ${who(v.actor)} · `,
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
                        // The listing below is read again at once, with its etag.
                        await revertResult(name, v.name, { etag: shownResult?.etag });
                      } catch (error) {
                        if (!changedMeanwhile(error)) {
                          replace(status, errorBox(error));
                          return;
                        }
                        // Someone changed the result since the page read it: its versions
                        // and the table are read again, and nothing of theirs was undone.
                        await onReverted();
                        await load(
                          h(
                            "p",
                            { class: "error", role: "alert" },
                            `${path} was changed by someone else since this page read it, so it was not reverted. ` +
                              "Its versions are listed as they are now; revert again if you still need to.",
                          ),
                        );
                        heading.focus();
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

  /**
   * Lists the versions again when the result shown has a newer one than those listed.
   * @param {{name?: string, version?: number, etag?: string}} result
   */
  function update(result) {
    if (element.hidden || !shownResult || result.name !== shownResult.name) return;
    if (!shownVersion || !result.version || result.version === shownVersion) return;
    load();
  }

  function close() {
    element.hidden = true;
    shownResult = null;
    latestVersions.forget();
    replace(body);
    opener?.focus();
  }

  return { element, show, update, close };
}
