// @ts-check
// History-API navigation. The shell (app.js) registers what renders a path; pages only navigate.

/** @type {() => Promise<void>} */
let render = async () => {};

/** @param {() => Promise<void>} fn */
export function setRenderer(fn) {
  render = fn;
}

/** Goes to an app path. @param {string} path @param {{replaceEntry?: boolean}} [options] */
export function navigate(path, { replaceEntry = false } = {}) {
  if (replaceEntry) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  return render();
}

/**
 * Sends the page at `from` on to `path` in its place (a job's address to the step it is at),
 * unless the user went elsewhere while the page was loading: the late answer must not take
 * them away from where they went.
 * @param {string} from @param {string} path
 */
export function redirect(from, path) {
  if (location.pathname !== from) return Promise.resolve();
  return navigate(path, { replaceEntry: true });
}
