// @ts-check
// The app shell: sign-in state, the account area, and History-API routing to the pages.
import { onUnauthorized } from "./api.js";
import * as auth from "./auth.js";
import { h, replace, errorBox, retryBox } from "./ui.js";
import { renderSignIn } from "./pages/signin.js";
import { renderDashboard } from "./pages/dashboard.js";
import { renderNewJob } from "./pages/newjob.js";
import { renderAnalysis } from "./pages/analysis.js";
import { renderConfigure } from "./pages/configure.js";
import { renderJob } from "./pages/job.js";
import { renderTemplates, renderTemplate } from "./pages/templates.js";
import { renderApiKeys } from "./pages/apikeys.js";
import { getJob } from "./api/jobs.js";
import { navigate, redirect, setRenderer } from "./router.js";

/** @typedef {(main: HTMLElement, params: Record<string, string>) => (void | (() => void) | Promise<void | (() => void)>)} Page */

/** Where the current page draws: a fresh <main> for every visit (see `visit`). */
let main = /** @type {HTMLElement} */ (document.getElementById("main"));
const nav = /** @type {HTMLElement} */ (document.getElementById("nav"));
const account = /** @type {HTMLElement} */ (document.getElementById("account"));
/** @type {(() => void) | null} */
let cleanup = null;

// Ids as the API makes them (32 hex digits, services/jobs/domain/names.py): any other text in
// an address is no page, not a request the API refuses with "name must look like …".
const ID = "(?<id>[0-9a-f]{32})";

/** @type {[RegExp, Page][]} */
const ROUTES = [
  [/^\/(?:app\/?)?$/, renderDashboard],
  [/^\/app\/jobs\/?$/, renderDashboard],
  [/^\/app\/jobs\/new$/, renderNewJob],
  [new RegExp(`^/app/jobs/${ID}/analysis$`), renderAnalysis],
  [new RegExp(`^/app/jobs/${ID}/configure$`), renderConfigure],
  [new RegExp(`^/app/jobs/${ID}/results$`), renderJob],
  [new RegExp(`^/app/jobs/${ID}$`), openJob],
  [/^\/app\/templates\/?$/, renderTemplates],
  [/^\/app\/templates\/new$/, renderTemplate],
  [new RegExp(`^/app/templates/${ID}$`), renderTemplate],
  [/^\/app\/apiKeys$/, renderApiKeys],
];


/** A job's page depends on where the job is in its life. @type {Page} */
async function openJob(_main, { id }) {
  const job = await getJob(`jobs/${id}`);
  const step =
    job.status === "ANALYZING" || job.status === "PENDING_UPLOAD"
      ? "analysis"
      : job.status === "READY"
        ? "configure"
        : "results";
  await redirect(`/app/jobs/${id}`, `/app/jobs/${id}/${step}`);
}

let visits = 0;
/** Pages drawn so far: the first is the one the browser opened, where focus starts at the top. */
let drawn = 0;

/**
 * Starts a visit: the page that is left stops, and the new one gets a <main> of its own in
 * its place. A page draws once its data is in; a user who went on to another page meanwhile
 * (a link, Back) must not get the earlier page's late drawing over the newer one, so an
 * earlier visit draws into its own <main>, no longer on screen.
 * @returns {{view: HTMLElement, current: () => boolean}}
 */
function visit() {
  if (cleanup) cleanup();
  cleanup = null;
  const mine = ++visits;
  const view = /** @type {HTMLElement} */ (main.cloneNode(false)); // id, tabindex: the skip link's target
  view.append(h("p", { class: "muted" }, "Loading…"));
  main.replaceWith(view);
  main = view;
  return { view, current: () => mine === visits };
}

async function route() {
  const path = location.pathname;
  if (path === "/app/callback") return callback();
  if (!auth.currentUser()) return showSignIn();
  const { view, current } = visit();
  for (const [pattern, page] of ROUTES) {
    const found = pattern.exec(path);
    if (!found) continue;
    try {
      const done = await page(view, found.groups || {});
      if (!current()) {
        // Left before it was drawn: its live watch or timers stop now, not never.
        if (typeof done === "function") done();
        return;
      }
      if (typeof done === "function") cleanup = done;
    } catch (error) {
      if (!current()) return;
      // A page that failed to load (the server down a moment, say) is drawn again on a click.
      replace(view, h("h1", {}, "Something went wrong"), retryBox(error, route));
    }
    focusHeading();
    return;
  }
  replace(
    view,
    h("h1", {}, "Page not found"),
    h("p", {}, "There is no page here. ", h("a", { href: "/app/jobs" }, "Go to your jobs"), "."),
  );
  focusHeading();
}

function focusHeading() {
  const heading = /** @type {HTMLElement | null} */ (main.querySelector("h1"));
  document.title = heading ? `${heading.textContent} · ByteReview` : "ByteReview";
  // After a move within the app the focus goes to the new page's heading, as a new page
  // would start a screen reader there: it stayed on <body> (the clicked link was gone), and a
  // keyboard user tabbed through the header again. Unless the page put it somewhere itself.
  if (drawn++ === 0 || !heading) return;
  const active = document.activeElement;
  if (active && active !== document.body && main.contains(active)) return;
  heading.setAttribute("tabindex", "-1");
  heading.focus();
}

function showSignIn() {
  nav.hidden = true;
  replace(account);
  renderSignIn(visit().view, { onSignedIn: signedIn });
  focusHeading();
}

function signedIn() {
  const user = auth.currentUser();
  nav.hidden = false;
  replace(
    account,
    h(
      "span",
      { class: "user", "aria-label": "Signed in as" },
      h("strong", {}, user.displayName || user.email || "Signed in"),
      user.email && user.displayName ? h("span", { class: "muted" }, ` ${user.email}`) : null,
    ),
    h(
      "button",
      {
        type: "button",
        onclick: () => {
          auth.signOut();
          navigate("/app/jobs");
        },
      },
      "Sign out",
    ),
  );
  const path = location.pathname;
  // Where the user was going, query included (a filter in the address survives a reload).
  const target =
    path === "/app/signin" || path === "/app/callback" ? "/app/jobs" : path + location.search;
  return navigate(target, { replaceEntry: true });
}

async function callback() {
  try {
    await auth.completeOidc();
    await signedIn();
  } catch (error) {
    history.replaceState(null, "", "/app/signin");
    showSignIn();
    main.append(errorBox(error));
  }
}

// Same-origin links to the app change pages without reloading.
document.addEventListener("click", (event) => {
  const target = /** @type {Element} */ (event.target);
  const link = target.closest ? target.closest("a[href]") : null;
  if (!(link instanceof HTMLAnchorElement) || link.hasAttribute("download")) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || !(url.pathname === "/" || url.pathname.startsWith("/app")))
    return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => route());
onUnauthorized(() => {
  if (!auth.currentUser()) return;
  auth.signOut();
  showSignIn();
  main.append(
    h("p", { class: "error", role: "alert" }, "Your sign-in has expired; please sign in again."),
  );
});

async function start() {
  try {
    await auth.loadConfig();
    if (location.pathname === "/app/callback") return callback();
    const user = await auth.restoreSession();
    if (user) return signedIn();
    return route();
  } catch (error) {
    replace(main, h("h1", {}, "ByteReview could not start"), errorBox(error));
  }
}

setRenderer(route);
start();
