// @ts-check
// Templates: reusable sets of fields. List, create, edit, delete; each template's versions with
// their accuracy on its golden documents, and scoring a version on demand.
import * as api from "../api/templates.js";
import { navigate } from "../router.js";
import { fieldsEditor } from "../fields-editor.js";
import { h, replace, errorBox, confirmDialog, formatTime, latestOnly, oneAtATime } from "../ui.js";

/** @typedef {{add: (stop: () => void) => void, stopAll: () => void, left: boolean}} Polls */

/**
 * The templates list. Returns the visit's cleanup: the version lists' score polls stop when
 * the user leaves (the router runs it), and when a delete draws the list anew.
 * @param {HTMLElement} main
 */
export async function renderTemplates(main) {
  /** @type {(() => void)[]} */
  let stops = [];
  /** @type {Polls} */
  const polls = {
    add: (stop) => void stops.push(stop),
    stopAll: () => {
      for (const stop of stops) stop();
      stops = [];
    },
    left: false,
  };
  await drawTemplates(main, polls);
  return () => {
    polls.left = true;
    polls.stopAll();
  };
}

/** @param {HTMLElement} main @param {Polls} polls */
async function drawTemplates(main, polls) {
  const body = h("div");
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Templates"),
      h("a", { href: "/app/templates/new", class: "button primary" }, "New template"),
    ),
    body,
  );
  const page = await api.listTemplates();
  // The lists drawn before (a delete draws anew) poll no more: their elements are gone. A
  // page left meanwhile starts none.
  polls.stopAll();
  if (polls.left) return;
  const templates = page.templates || [];
  if (!templates.length) {
    replace(
      body,
      h(
        "p",
        { class: "empty" },
        "No templates yet. A template keeps a set of fields to reuse on many jobs: ",
        h("a", { href: "/app/templates/new" }, "create one"),
        ", or save the fields of a job as a template while configuring it.",
      ),
    );
    return;
  }
  replace(
    body,
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, "Your templates"),
      h("thead", {}, h("tr", {}, ["Name", "Fields", "Versions", "Updated", ""].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        templates.map((/** @type {any} */ t) =>
          h(
            "tr",
            {},
            h("td", {}, h("a", { href: `/app/templates/${t.name.split("/")[1]}` }, t.displayName)),
            h("td", {}, (t.fields || []).map((/** @type {any} */ f) => f.name).join(", ")),
            h("td", {}, versionList(t, polls)),
            h("td", {}, formatTime(t.updateTime || t.createTime)),
            h(
              "td",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "danger",
                  // The name in the accessible name only: a long one widened the page.
                  "aria-label": `Delete ${t.displayName}`,
                  onclick: async () => {
                    if (!(await confirmDialog(`Delete the template "${t.displayName}"?`, "Delete"))) return;
                    try {
                      await api.deleteTemplate(t.name);
                      await drawTemplates(main, polls);
                    } catch (error) {
                      body.prepend(errorBox(error));
                    }
                  },
                },
                "Delete",
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

/** @param {HTMLElement} main @param {{id?: string}} params */
export async function renderTemplate(main, { id }) {
  const [types, existing] = await Promise.all([
    api.listDataTypes(),
    id ? api.getTemplate(`templates/${id}`) : Promise.resolve(null),
  ]);
  const editor = fieldsEditor({ dataTypes: types.dataTypes || [], initial: existing?.fields || [] });
  const nameInput = /** @type {HTMLInputElement} */ (
    h("input", { id: "template-display-name", type: "text", maxlength: 200, value: existing?.displayName || "" })
  );
  const description = /** @type {HTMLInputElement} */ (
    h("input", { id: "template-description", type: "text", maxlength: 2000, value: existing?.description || "" })
  );
  const status = h("div", { "aria-live": "polite" });
  replace(
    main,
    h("h1", {}, existing ? `Template: ${existing.displayName}` : "New template"),
    h("div", { class: "field" }, h("label", { for: "template-display-name" }, "Template name"), nameInput),
    h("div", { class: "field" }, h("label", { for: "template-description" }, "Description"), description),
    h("h2", {}, "Fields"),
    editor.element,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "primary", onclick: save }, "Save template"),
      h("a", { href: "/app/templates", class: "button" }, "Back to templates"),
    ),
    status,
  );

  async function save() {
    const template = {
      displayName: nameInput.value.trim(),
      description: description.value,
      fields: editor.getFields(),
    };
    try {
      if (existing) await api.updateTemplate({ name: existing.name, ...template });
      else await api.createTemplate(template);
    } catch (error) {
      const sentence = editor.showError(error);
      replace(status, sentence ? h("p", { class: "error", role: "alert" }, sentence) : errorBox(error));
      return;
    }
    await navigate("/app/templates");
  }
}

/** @param {number} n */
const percent = (n) => `${Math.round(n * 1000) / 10}%`;

/** What a version's score says, in words. @param {any} score */
function scoreWords(score) {
  if (!score || !score.state) return "not scored";
  if (score.state === "RUNNING") return "scoring…";
  if (score.state === "FAILED") return `scoring failed${score.error ? `: ${score.error}` : ""}`;
  return `${percent(score.accuracy || 0)} on ${score.goldenDocuments || 0} golden document(s) (${score.valuesCorrect || 0} of ${score.valuesCompared || 0} values)`;
}

const POLL_MS = 2000;

/**
 * A template's versions, newest first, each with its score and a button to score it. A score
 * being computed is checked again every few seconds while the list is on the page: one timer
 * per list, re-armed by the latest load only. Each "Score" click and each poll that saw a
 * score running used to start a loop of its own, so N clicks polled N times every 2 s, and a
 * poll already armed still asked once after the user had left.
 * @param {any} template @param {Polls} polls
 */
function versionList(template, polls) {
  const list = h("ul", { class: "versions", "aria-label": `Versions of ${template.displayName}` });
  const status = h("div", { "aria-live": "polite" });
  const element = h("div", {}, list, status);
  let timer = 0;
  let stopped = false;
  // A click's load and a poll's overlap: only the latest answer is drawn (and re-arms).
  const latestVersions = latestOnly(api.listTemplateVersions);
  polls.add(() => {
    stopped = true;
    clearTimeout(timer);
    latestVersions.forget();
  });
  async function load() {
    clearTimeout(timer);
    if (stopped) return;
    let versions;
    try {
      const answer = await latestVersions(template.name);
      if (answer === undefined) return; // a later load is on its way, or the page was left
      versions = answer.versions || [];
    } catch (error) {
      replace(status, errorBox(error));
      return;
    }
    replace(
      list,
      versions.map((/** @type {any} */ v) =>
        h(
          "li",
          {},
          `Version ${v.version}: ${scoreWords(v.score)} `,
          h(
            "button",
            {
              type: "button",
              disabled: v.score?.state === "RUNNING",
              "aria-label": `Score version ${v.version} of ${template.displayName}`,
              // Once per click, like every button that sends.
              onclick: oneAtATime(async () => {
                try {
                  await api.scoreTemplateVersion(v.name);
                } catch (error) {
                  replace(status, errorBox(error));
                  return;
                }
                await load();
              }),
            },
            `Score version ${v.version}`,
          ),
        ),
      ),
    );
    clearTimeout(timer);
    if (!stopped && versions.some((/** @type {any} */ v) => v.score?.state === "RUNNING")) {
      timer = window.setTimeout(load, POLL_MS);
    }
  }
  load();
  return element;
}
