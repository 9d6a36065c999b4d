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
