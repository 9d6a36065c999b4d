// @ts-check
// Configure: the fields to extract (name, data type, instruction), their order, templates,
// one result per file or per folder; then start. The API checks the fields, and its message
// is shown next to the field it names.
import { getJob, configureJob, startJob } from "../api/jobs.js";
import { listDataTypes, listTemplates, getTemplate, createTemplate } from "../api/templates.js";
import { newRequestId } from "../api.js";
import { navigate } from "../router.js";
import { h, replace, errorBox, errorText } from "../ui.js";
import { filesPanel } from "./files-panel.js";

/** @typedef {{name: string, dataType: string, instruction: string}} Field */

// "fields[2].data_type 'x' is unknown; ..." -> field 2, data type.
const FIELD_ERROR = /^(?:fields|template\.fields)\[(\d+)\]\.(name|data_type|instruction)\b\s*(.*)$/is;
const PART = /** @type {Record<string, keyof Field>} */ ({
  name: "name",
  data_type: "dataType",
  instruction: "instruction",
});

/** @param {HTMLElement} main @param {{id: string}} params */
export async function renderConfigure(main, { id }) {
  const name = `jobs/${id}`;
  const [job, types, templates] = await Promise.all([
    getJob(name),
    listDataTypes(),
    listTemplates().catch(() => ({ templates: [] })),
  ]);
  if (job.status !== "READY") {
    await navigate(`/app/jobs/${id}`, { replaceEntry: true });
    return;
  }
  const dataTypes = /** @type {any[]} */ (types.dataTypes || []);
  /** @type {Field[]} */
  let fields = (job.fields || []).map((/** @type {any} */ f) => ({
    name: f.name,
    dataType: f.dataType,
    instruction: f.instruction || "",
  }));
  if (!fields.length) fields = [blankField()];
  /** Messages by field index and part, from the API's last answer. @type {Map<string, string>} */
  let messages = new Map();

  const editor = h("div", { class: "fields" });
  const status = h("div", { "aria-live": "polite" });
  const templateSelect = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      { id: "template-pick" },
      h("option", { value: "" }, "Choose a template"),
      (templates.templates || []).map((/** @type {any} */ t) => h("option", { value: t.name }, t.displayName)),
    )
  );
  const templateName = /** @type {HTMLInputElement} */ (h("input", { id: "template-name", type: "text" }));
  const mode = job.taskMode === "TASK_MODE_COMBINED" ? "TASK_MODE_COMBINED" : "TASK_MODE_INDIVIDUAL";
  const panel = filesPanel({ job: name, fields: () => fields, mode: () => taskMode() });

  replace(
    main,
    h("h1", {}, `Configure: ${job.displayName || id}`),
    h("p", {}, "Say what to extract from every document. Field names hold letters, digits and _."),
    h(
      "section",
      { class: "card", "aria-labelledby": "templates-heading" },
      h("h2", { id: "templates-heading" }, "Templates"),
      h(
        "div",
        { class: "toolbar" },
        h("label", { for: "template-pick" }, "Template"),
        templateSelect,
        h("button", { type: "button", onclick: loadTemplate }, "Load template"),
      ),
      h(
        "div",
        { class: "toolbar" },
        h("label", { for: "template-name" }, "New template name"),
        templateName,
        h("button", { type: "button", onclick: saveTemplate }, "Save as template"),
      ),
    ),
    h("h2", {}, "Fields"),
    editor,
    h("button", { type: "button", onclick: () => { fields.push(blankField()); draw(); focusLast(); } }, "Add field"),
    h(
      "fieldset",
      { class: "card", onchange: () => panel.redraw() },
      h("legend", {}, "Results"),
      h(
        "label",
        {},
        h("input", { type: "radio", name: "task-mode", value: "TASK_MODE_INDIVIDUAL", checked: mode === "TASK_MODE_INDIVIDUAL" }),
        " One result per file",
      ),
      h(
        "label",
        {},
        h("input", { type: "radio", name: "task-mode", value: "TASK_MODE_COMBINED", checked: mode === "TASK_MODE_COMBINED" }),
        " One result per folder (the files of a folder together)",
      ),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => save(false) }, "Save fields"),
      h("button", { type: "button", class: "primary", onclick: () => save(true) }, "Start extraction"),
    ),
    status,
    panel.element,
  );
  draw();

  function blankField() {
    return { name: "", dataType: dataTypes[0]?.id || "text", instruction: "" };
  }

  function focusLast() {
    const inputs = editor.querySelectorAll("input[data-part=name]");
    /** @type {HTMLInputElement | undefined} */ (inputs[inputs.length - 1])?.focus();
  }

  function draw() {
    replace(editor, fields.map(fieldRow));
  }

  /** @param {Field} field @param {number} i */
  function fieldRow(field, i) {
    const n = i + 1;
    /** @param {keyof Field} part @param {string} label @param {HTMLElement} control */
    const labelled = (part, label, control) => {
      const controlId = `field-${n}-${part}`;
      const message = messages.get(`${i}.${part}`);
      control.id = controlId;
      control.dataset.part = part;
      control.addEventListener("input", () => {
        field[part] = /** @type {HTMLInputElement} */ (control).value;
      });
      if (message) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", `${controlId}-error`);
      }
      return h(
        "div",
        { class: "field" },
        h("label", { for: controlId }, label, h("span", { class: "visually-hidden" }, ` of field ${n}`)),
        control,
        message ? h("p", { class: "field-error", id: `${controlId}-error` }, message) : null,
      );
    };
    return h(
      "fieldset",
      { class: "field-row" },
      h("legend", {}, `Field ${n}`),
      labelled("name", "Name", h("input", { type: "text", value: field.name, autocomplete: "off" })),
      labelled(
        "dataType",
        "Data type",
        h(
          "select",
          {},
          dataTypes.map((t) => h("option", { value: t.id, selected: t.id === field.dataType }, t.displayName || t.id)),
        ),
      ),
      labelled("instruction", "Instruction", h("input", { type: "text", value: field.instruction })),
      h(
        "div",
        { class: "row-actions" },
        h("button", { type: "button", disabled: i === 0, onclick: () => move(i, -1) }, `Move field ${n} up`),
        h("button", { type: "button", disabled: i === fields.length - 1, onclick: () => move(i, 1) }, `Move field ${n} down`),
        h("button", { type: "button", disabled: fields.length === 1, onclick: () => { fields.splice(i, 1); messages = new Map(); draw(); } }, `Remove field ${n}`),
      ),
    );
  }

  /** @param {number} i @param {number} by */
  function move(i, by) {
    const [field] = fields.splice(i, 1);
    fields.splice(i + by, 0, field);
    messages = new Map();
    draw();
    /** @type {HTMLElement | null} */ (editor.querySelector(`#field-${i + by + 1}-name`))?.focus();
  }

  function taskMode() {
    const checked = /** @type {HTMLInputElement | null} */ (main.querySelector("input[name=task-mode]:checked"));
    return checked ? checked.value : "TASK_MODE_INDIVIDUAL";
  }

  /** Shows an API error next to the field it names, or above the buttons. @param {unknown} error */
  function showError(error) {
    messages = new Map();
    const found = FIELD_ERROR.exec(error instanceof Error ? error.message : "");
    if (found) {
      const text = errorText(error).replace(/^\S+\s*/, "");
      messages.set(`${found[1]}.${PART[found[2]]}`, capitalise(text));
      draw();
      replace(status, h("p", { class: "error", role: "alert" }, `Field ${Number(found[1]) + 1} needs a fix: ${capitalise(text)}`));
      /** @type {HTMLElement | null} */ (editor.querySelector("[aria-invalid=true]"))?.focus();
    } else {
      draw();
      replace(status, errorBox(error));
    }
  }

  /** @param {boolean} andStart */
  async function save(andStart) {
    replace(status, h("p", {}, andStart ? "Starting…" : "Saving…"));
    try {
      await configureJob(name, { fields, taskMode: taskMode() });
      messages = new Map();
      draw();
      if (!andStart) {
        replace(status, h("p", {}, "Fields saved."));
        return;
      }
      await startJob(name, newRequestId());
    } catch (error) {
      showError(error);
      return;
    }
    await navigate(`/app/jobs/${id}/results`);
  }

  async function loadTemplate() {
    if (!templateSelect.value) {
      replace(status, h("p", { class: "error", role: "alert" }, "Choose a template to load first."));
      return;
    }
    try {
      const template = await getTemplate(templateSelect.value);
      fields = (template.fields || []).map((/** @type {any} */ f) => ({
        name: f.name,
        dataType: f.dataType,
        instruction: f.instruction || "",
      }));
      if (!fields.length) fields = [blankField()];
      messages = new Map();
      draw();
      replace(status, h("p", {}, `Loaded the fields of "${template.displayName}".`));
    } catch (error) {
      replace(status, errorBox(error));
    }
  }

  async function saveTemplate() {
    const displayName = templateName.value.trim();
    if (!displayName) {
      replace(status, h("p", { class: "error", role: "alert" }, "Give the template a name first."));
      templateName.focus();
      return;
    }
    try {
      const created = await createTemplate({ displayName, fields });
      templateSelect.append(h("option", { value: created.name }, created.displayName));
      replace(status, h("p", {}, `Saved the fields as template "${created.displayName}".`));
    } catch (error) {
      showError(error);
    }
  }
}

/** @param {string} text */
function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
