// @ts-check
// Configure: the fields to extract, templates, the system prompt, one result per file or per
// folder (for the job and per folder, in the files panel, with its task count and preview);
// then start.
import { getJob, configureJob, startJob } from "../api/jobs.js";
import {
  listDataTypes,
  listTemplates,
  getTemplate,
  createTemplate,
  listSystemPrompts,
} from "../api/templates.js";
import { newRequestId } from "../api.js";
import { navigate, redirect } from "../router.js";
import { fieldsEditor } from "../fields-editor.js";
import { h, replace, errorBox, latestOnly, oneAtATime } from "../ui.js";
import { filesPanel } from "./files-panel.js";

/** @param {HTMLElement} main @param {{id: string}} params */
export async function renderConfigure(main, { id }) {
  const name = `jobs/${id}`;
  const [job, types, templates, prompts] = await Promise.all([
    getJob(name),
    listDataTypes(),
    listTemplates().catch(() => ({ templates: [] })),
    listSystemPrompts().catch(() => ({ systemPrompts: [] })),
  ]);
  if (job.status !== "READY") {
    await redirect(`/app/jobs/${id}/configure`, `/app/jobs/${id}`);
    return;
  }
  const editor = fieldsEditor({ dataTypes: types.dataTypes || [], initial: job.fields || [] });
  const status = h("div", { "aria-live": "polite" });
  // What loading or saving a template did, by its buttons: in `status`, below Start
  // extraction, it was off the screen where the user had clicked.
  const templateStatus = h("div", { "aria-live": "polite" });
  const templateSelect = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      { id: "template-pick" },
      h("option", { value: "" }, "Choose a template"),
      (templates.templates || []).map((/** @type {any} */ t) => h("option", { value: t.name }, t.displayName)),
    )
  );
  const templateName = /** @type {HTMLInputElement} */ (h("input", { id: "template-name", type: "text", maxlength: 200 }));
  const mode = job.taskMode === "TASK_MODE_COMBINED" ? "TASK_MODE_COMBINED" : "TASK_MODE_INDIVIDUAL";
  const panel = filesPanel({
    job: name,
    fields: editor.getFields,
    mode: () => taskMode(),
    rules: job.folderRules || [],
  });
  // Empty: the prompt that is active when the job starts.
  const promptSelect = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      { id: "system-prompt" },
      h("option", { value: "" }, "The active prompt"),
      (prompts.systemPrompts || []).map((/** @type {any} */ p) =>
        h(
          "option",
          { value: p.name, selected: p.name === job.systemPrompt },
          `Version ${p.version}${p.active ? " (active)" : ""}`,
        ),
      ),
    )
  );
  const promptText = h("p", { class: "muted prompt-text" });
  const showPrompt = () => {
    const chosen = (prompts.systemPrompts || []).find(
      (/** @type {any} */ p) => p.name === promptSelect.value || (!promptSelect.value && p.active),
    );
    promptText.textContent = chosen ? chosen.text : "";
  };
  promptSelect.addEventListener("change", showPrompt);
  showPrompt();

  /** @param {string} value @param {string} label */
  const modeChoice = (value, label) =>
    h("label", {}, h("input", { type: "radio", name: "task-mode", value, checked: mode === value }), label);

  replace(
    main,
    h("h1", {}, `Configure: ${job.displayName || id}`),
    h("p", {}, "Say what to extract from every document. Field names hold letters, digits and _, up to 64 characters."),
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
        // Once: a double-click made two templates of the one name.
        h("button", { type: "button", onclick: oneAtATime(saveTemplate) }, "Save as template"),
      ),
      templateStatus,
    ),
    h("h2", {}, "Fields"),
    editor.element,
    h(
      "fieldset",
      { class: "card", onchange: () => panel.redraw() },
      h("legend", {}, "Results"),
      modeChoice("TASK_MODE_INDIVIDUAL", " One result per file"),
      modeChoice("TASK_MODE_COMBINED", " One result per folder (the files of a folder together)"),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "prompt-heading" },
      h("h2", { id: "prompt-heading" }, "Instructions to the extractor"),
      h(
        "div",
        { class: "toolbar" },
        h("label", { for: "system-prompt" }, "System prompt"),
        promptSelect,
      ),
      promptText,
    ),
    h(
      "div",
      { class: "actions" },
      // Once: a double-click sent the configuration (and the start) twice.
      h("button", { type: "button", onclick: oneAtATime(() => save(false)) }, "Save fields"),
      h("button", { type: "button", class: "primary", onclick: oneAtATime(() => save(true)) }, "Start extraction"),
    ),
    status,
    panel.element,
  );

  function taskMode() {
    const checked = /** @type {HTMLInputElement | null} */ (main.querySelector("input[name=task-mode]:checked"));
    return checked ? checked.value : "TASK_MODE_INDIVIDUAL";
  }

  /** @param {unknown} error */
  function showError(error) {
    const sentence = editor.showError(error);
    replace(status, sentence ? h("p", { class: "error", role: "alert" }, sentence) : errorBox(error));
  }

  /** @param {boolean} andStart */
  async function save(andStart) {
    replace(status, h("p", {}, andStart ? "Starting…" : "Saving…"));
    try {
      await configureJob(name, {
        fields: editor.getFields(),
        taskMode: taskMode(),
        folderRules: panel.folderRules(),
        systemPrompt: promptSelect.value,
      });
      editor.clearErrors();
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

  // Two templates loaded in a row: the first one's late answer replaced the second's fields.
  const latestTemplate = latestOnly(getTemplate);

  async function loadTemplate() {
    if (!templateSelect.value) {
      replace(templateStatus, h("p", { class: "error", role: "alert" }, "Choose a template to load first."));
      return;
    }
    try {
      const template = await latestTemplate(templateSelect.value);
      if (template === undefined) return; // another template was loaded meanwhile
      editor.setFields(template.fields || []);
      replace(templateStatus, h("p", {}, `Loaded the fields of "${template.displayName}".`));
    } catch (error) {
      replace(templateStatus, errorBox(error));
    }
  }

  async function saveTemplate() {
    const displayName = templateName.value.trim();
    if (!displayName) {
      replace(templateStatus, h("p", { class: "error", role: "alert" }, "Give the template a name first."));
      templateName.focus();
      return;
    }
    try {
      const created = await createTemplate({ displayName, fields: editor.getFields() });
      // The new template is the one chosen: the job's fields are its fields now.
      templateSelect.append(h("option", { value: created.name, selected: true }, created.displayName));
      templateSelect.value = created.name;
      replace(templateStatus, h("p", {}, `Saved the fields as template "${created.displayName}".`));
    } catch (error) {
      const sentence = editor.showError(error);
      replace(templateStatus, sentence ? h("p", { class: "error", role: "alert" }, sentence) : errorBox(error));
    }
  }

  // Leaving the page stops the files panel's loads (see filesPanel's stop).
  return () => panel.stop();
}
