// @ts-check
// The fields editor (name, data type, instruction; add, reorder, remove), used by the configure
// page and the templates page. The API checks the fields; `showError` puts its message next to
// the field it names ("fields[1].name ...").
import { h, replace, errorText } from "./ui.js";

/** @typedef {{name: string, dataType: string, instruction: string}} Field */

const FIELD_ERROR = /^(?:template\.)?fields\[(\d+)\]\.(name|data_type|instruction)\b\s*(.*)$/is;
const PART = /** @type {Record<string, keyof Field>} */ ({
  name: "name",
  data_type: "dataType",
  instruction: "instruction",
});

/**
 * @param {{dataTypes: any[], initial?: any[], idPrefix?: string}} options
 */
export function fieldsEditor({ dataTypes, initial = [], idPrefix = "field" }) {
  /** @type {Field[]} */
  let fields = [];
  /** Messages by "index.part", from the API's last answer. @type {Map<string, string>} */
  let messages = new Map();
  const rows = h("div", { class: "fields" });
  const element = h(
    "div",
    {},
    rows,
    h(
      "button",
      {
        type: "button",
        onclick: () => {
          fields.push(blank());
          draw();
          const names = rows.querySelectorAll("input[data-part=name]");
          /** @type {HTMLInputElement | undefined} */ (names[names.length - 1])?.focus();
        },
      },
      "Add field",
    ),
  );

  function blank() {
    return { name: "", dataType: dataTypes[0]?.id || "text", instruction: "" };
  }

  /** @param {any[]} list */
  function setFields(list) {
    fields = list.map((f) => ({ name: f.name || "", dataType: f.dataType || blank().dataType, instruction: f.instruction || "" }));
    if (!fields.length) fields = [blank()];
    messages = new Map();
    draw();
  }

  function draw() {
    replace(rows, fields.map(row));
  }

  /** @param {Field} field @param {number} i */
  function row(field, i) {
    const n = i + 1;
    /** @param {keyof Field} part @param {string} label @param {HTMLElement} control */
    const labelled = (part, label, control) => {
      const controlId = `${idPrefix}-${n}-${part}`;
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
      // The API's limits (core/limits.py MAX_FIELD_NAME, MAX_INSTRUCTION): typed past them, the
      // field was refused only after the whole form was sent.
      labelled("name", "Name", h("input", { type: "text", value: field.name, autocomplete: "off", maxlength: 64 })),
      labelled(
        "dataType",
        "Data type",
        h(
          "select",
          {},
          dataTypes.map((t) => h("option", { value: t.id, selected: t.id === field.dataType }, t.displayName || t.id)),
        ),
      ),
      labelled("instruction", "Instruction", h("input", { type: "text", value: field.instruction, maxlength: 2000 })),
      h(
        "div",
        { class: "row-actions" },
        h("button", { type: "button", disabled: i === 0, onclick: () => move(i, -1) }, `Move field ${n} up`),
        h("button", { type: "button", disabled: i === fields.length - 1, onclick: () => move(i, 1) }, `Move field ${n} down`),
        h(
          "button",
          {
            type: "button",
            disabled: fields.length === 1,
            onclick: () => {
              fields.splice(i, 1);
              messages = new Map();
              draw();
            },
          },
          `Remove field ${n}`,
        ),
      ),
    );
  }

  /** @param {number} i @param {number} by */
  function move(i, by) {
    const [field] = fields.splice(i, 1);
    fields.splice(i + by, 0, field);
    messages = new Map();
    draw();
    /** @type {HTMLElement | null} */ (rows.querySelector(`#${idPrefix}-${i + by + 1}-name`))?.focus();
  }

  /**
   * Shows an API error next to the field it is about; returns the sentence for a summary,
   * or "" when the error is not about one field.
   * @param {unknown} error
   */
  function showError(error) {
    messages = new Map();
    const found = FIELD_ERROR.exec(error instanceof Error ? error.message : "");
    if (!found) {
      draw();
      return "";
    }
    const text = capitalise(errorText(error).replace(/^\S+\s*/, ""));
    messages.set(`${found[1]}.${PART[found[2]]}`, text);
    draw();
    /** @type {HTMLElement | null} */ (rows.querySelector("[aria-invalid=true]"))?.focus();
    return `Field ${Number(found[1]) + 1} needs a fix: ${text}`;
  }

  function clearErrors() {
    messages = new Map();
    draw();
  }

  setFields(initial);
  return { element, getFields: () => fields, setFields, showError, clearErrors };
}

/** @param {string} text */
function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
