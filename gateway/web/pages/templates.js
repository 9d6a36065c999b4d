// @ts-check
// Templates: reusable sets of fields. List, create, edit, delete.
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
      h("thead", {}, h("tr", {}, ["Name", "Fields", "Updated", ""].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        templates.map((/** @type {any} */ t) =>
          h(
            "tr",
            {},
            h("td", {}, h("a", { href: `/app/templates/${t.name.split("/")[1]}` }, t.displayName)),
            h("td", {}, (t.fields || []).map((/** @type {any} */ f) => f.name).join(", ")),
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
