// @ts-check
// Templates: reusable sets of fields. List, create, edit, delete; each template's versions with
// their accuracy on its golden documents, and scoring a version on demand.
import * as api from "../api/templates.js";
import { navigate } from "../router.js";
import { fieldsEditor } from "../fields-editor.js";
import { h, replace, errorBox, confirmDialog, formatTime } from "../ui.js";

/** @param {HTMLElement} main */
export async function renderTemplates(main) {
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
            h("td", {}, versionList(t)),
            h("td", {}, formatTime(t.updateTime || t.createTime)),
            h(
              "td",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "danger",
                  onclick: async () => {
                    if (!(await confirmDialog(`Delete the template "${t.displayName}"?`, "Delete"))) return;
                    try {
                      await api.deleteTemplate(t.name);
                      await renderTemplates(main);
                    } catch (error) {
                      body.prepend(errorBox(error));
                    }
                  },
                },
                `Delete ${t.displayName}`,
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
    h("input", { id: "template-display-name", type: "text", value: existing?.displayName || "" })
  );
  const description = /** @type {HTMLInputElement} */ (
    h("input", { id: "template-description", type: "text", value: existing?.description || "" })
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

/**
 * A template's versions, newest first, each with its score and a button to score it. A score
 * being computed is checked again every few seconds while the list is on the page.
 * @param {any} template
 */
function versionList(template) {
  const list = h("ul", { class: "versions", "aria-label": `Versions of ${template.displayName}` });
  const status = h("div", { "aria-live": "polite" });
  const element = h("div", {}, list, status);
  async function load() {
    let versions;
    try {
      versions = (await api.listTemplateVersions(template.name)).versions || [];
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
              onclick: async () => {
                try {
                  await api.scoreTemplateVersion(v.name);
                } catch (error) {
                  replace(status, errorBox(error));
                  return;
                }
                await load();
              },
            },
            `Score version ${v.version} of ${template.displayName}`,
          ),
        ),
      ),
    );
    if (versions.some((/** @type {any} */ v) => v.score?.state === "RUNNING") && element.isConnected) {
      setTimeout(load, 2000);
    }
  }
  load();
  return element;
}
