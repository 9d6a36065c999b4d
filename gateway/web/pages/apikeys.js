// @ts-check
// API keys: for scripts and partners. The secret is shown once, at creation; revoke any time.
import * as users from "../api/users.js";
import { h, replace, errorBox, confirmDialog, formatTime, latestOnly, oneAtATime } from "../ui.js";

/** @param {HTMLElement} main */
export async function renderApiKeys(main) {
  const nameInput = /** @type {HTMLInputElement} */ (h("input", { id: "key-name", type: "text", required: true, maxlength: 200 }));
  const created = h("div", { "aria-live": "polite" });
  const list = h("div");
  replace(
    main,
    h("h1", {}, "API keys"),
    h("p", {}, "A key lets a script call the API as you: send it in the X-API-Key header."),
    h(
      "form",
      {
        class: "card toolbar",
        // Once: a double-click on "Create key" made two keys of the one name.
        onsubmit: oneAtATime(async (/** @type {Event} */ event) => {
          event.preventDefault();
          const displayName = nameInput.value.trim();
          if (!displayName) {
            // Spaces pass `required`: the key was made unnamed, announced as "undefined".
            replace(created, h("p", { class: "error", role: "alert" }, "Give the key a name first."));
            nameInput.focus();
            return;
          }
          try {
            const key = await users.createApiKey(displayName);
            nameInput.value = "";
            replace(
              created,
              h(
                "div",
                { class: "card", role: "status" },
                h("p", {}, `Your new key "${key.displayName}". Copy it now: it is not shown again.`),
                h("code", { class: "secret", "aria-label": "New API key" }, key.key),
              ),
            );
            await load();
          } catch (error) {
            replace(created, errorBox(error));
          }
        }),
      },
      h("label", { for: "key-name" }, "Key name"),
      nameInput,
      h("button", { type: "submit", class: "primary" }, "Create key"),
    ),
    created,
    list,
  );

  // The list is read again after each create and revoke: a revoke soon after a create got the
  // create's late list, with the revoked key back in it.
  const latestKeys = latestOnly(users.listApiKeys);

  async function load() {
    try {
      const answer = await latestKeys();
      if (answer === undefined) return; // a later change's list is on its way
      const keys = answer.apiKeys || [];
      if (!keys.length) {
        replace(list, h("p", { class: "empty" }, "No API keys yet. Create one above for a script."));
        return;
      }
      replace(
        list,
        h(
          "table",
          {},
          h("caption", { class: "visually-hidden" }, "Your API keys"),
          h("thead", {}, h("tr", {}, ["Name", "Starts with", "Created", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            keys.map((/** @type {any} */ k) =>
              h(
                "tr",
                {},
                h("td", {}, k.displayName || "(unnamed)"),
                h("td", {}, h("code", {}, k.prefix || "")),
                h("td", {}, formatTime(k.createTime)),
                h("td", {}, k.lastUsedTime ? formatTime(k.lastUsedTime) : "never"),
                h(
                  "td",
                  {},
                  h(
                    "button",
                    {
                      type: "button",
                      class: "danger",
                      // The name in the accessible name only: a long one widened the page.
                      "aria-label": `Revoke ${k.displayName || k.prefix}`,
                      onclick: async () => {
                        if (!(await confirmDialog(`Revoke the key "${k.displayName}"? Scripts using it stop working.`, "Revoke"))) return;
                        try {
                          await users.deleteApiKey(k.name);
                          await load();
                        } catch (error) {
                          list.prepend(errorBox(error));
                        }
                      },
                    },
                    "Revoke",
                  ),
                ),
              ),
            ),
          ),
        ),
      );
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();
}
