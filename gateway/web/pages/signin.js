// @ts-check
// Sign-in page: the dev token (dev mode), single sign-on (OIDC), or a pasted API key.
import * as auth from "../auth.js";
import { h, replace, errorBox } from "../ui.js";

/**
 * @param {HTMLElement} main
 * @param {{onSignedIn: () => void}} options
 */
export function renderSignIn(main, { onSignedIn }) {
  const status = h("div", { "aria-live": "polite" });
  /** @param {() => Promise<unknown>} action */
  const attempt = async (action) => {
    replace(status);
    try {
      await action();
      onSignedIn();
    } catch (error) {
      replace(status, errorBox(error));
    }
  };
  const mode = auth.authMode();
  const keyInput = h("input", {
    id: "api-key",
    type: "password",
    autocomplete: "off",
    required: true,
  });
  replace(
    main,
    h("h1", {}, "Sign in to ByteReview"),
    mode === "dev"
      ? h(
          "section",
          { class: "card" },
          h("p", {}, "This server runs in dev mode: sign in as the local developer."),
          h(
            "button",
            { type: "button", class: "primary", onclick: () => attempt(auth.signInWithDevToken) },
            "Sign in with the dev token",
          ),
        )
      : null,
    auth.hasOidc()
      ? h(
          "section",
          { class: "card" },
          h(
            "button",
            { type: "button", class: "primary", onclick: () => attempt(auth.signInWithOidc) },
            "Sign in with single sign-on",
          ),
        )
      : null,
    h(
      "form",
      {
        class: "card",
        onsubmit: (/** @type {Event} */ event) => {
          event.preventDefault();
          attempt(() => auth.signInWithApiKey(/** @type {HTMLInputElement} */ (keyInput).value));
        },
      },
      h("label", { for: "api-key" }, "API key"),
      keyInput,
      h("button", { type: "submit" }, "Sign in with API key"),
    ),
    status,
  );
}
