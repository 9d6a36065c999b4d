// @ts-check
// The one way the app talks to the REST API: credentials, JSON, and errors turned into a
// message a person can read, with the request id to quote to an operator.

/** @typedef {{kind: "bearer" | "apiKey", value: string, source: string}} Credential */

/** @type {Credential | null} */
let credential = null;
/** @type {Set<() => void>} */
const unauthorizedListeners = new Set();

export class ApiError extends Error {
  /**
   * @param {string} message what went wrong, in words
   * @param {{status?: number, code?: string, requestId?: string}} [info]
   */
  constructor(message, { status = 0, code = "", requestId = "" } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }

  /** The message as the user sees it: the reason, then the id to quote. */
  get display() {
    return this.requestId ? `${this.message} (request id ${this.requestId})` : this.message;
  }
}

/** @param {Credential | null} value */
export function setCredential(value) {
  credential = value;
}

export function getCredential() {
  return credential;
}

/** Called when the API says the credential is no longer good (401). @param {() => void} fn */
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
}

/** The headers that carry the credential. @returns {Record<string, string>} */
export function authHeaders() {
  if (!credential) return {};
  return credential.kind === "apiKey"
    ? { "X-API-Key": credential.value }
    : { Authorization: `Bearer ${credential.value}` };
}

/** A request id of our own, so a failure can be quoted even when no answer came back. */
export function newRequestId() {
  return crypto.randomUUID().replaceAll("-", "");
}

/**
 * @param {Record<string, string | number | boolean | undefined | null>} [query]
 */
function queryString(query) {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

const STATUS_WORDS = /** @type {Record<number, string>} */ ({
  401: "You are not signed in, or your sign-in has expired.",
  403: "You are not allowed to do this.",
  404: "This does not exist (or is not yours).",
  413: "The file is larger than allowed.",
  429: "Too many requests; wait a moment and try again.",
  500: "The server failed to answer.",
  502: "The server is not reachable right now; try again shortly.",
  503: "The service is unavailable right now; try again shortly.",
  504: "The server took too long to answer; try again.",
});

/**
 * Turns a failed answer into an ApiError with the API's own message when there is one.
 * @param {Response} response
 * @param {string} sentId
 */
export async function errorFrom(response, sentId) {
  const requestId = response.headers.get("x-request-id") || sentId;
  let message = "";
  let code = "";
  try {
    const body = await response.json();
    message = body?.error?.message || "";
    code = body?.error?.status || "";
  } catch {
    // Not JSON (a proxy's error page, say): the status words below say enough.
  }
  const words = STATUS_WORDS[response.status] || `The request failed (HTTP ${response.status}).`;
  const text = message ? readable(message) : words;
  return new ApiError(text, { status: response.status, code, requestId });
}

// A message that starts with the field it is about ("values.total (Currency field): …",
// "files[0].size_bytes must …"): capitalised, the path read "Values.total", "Api_key.display_name",
// names that exist nowhere.
const FIELD_PATH = /^[a-z_][a-z0-9_]*(?:\[\d+\])?[.[]/i;

/** The API's message as it wrote it, its first letter capitalised unless it is a field path. @param {string} text */
function readable(text) {
  return FIELD_PATH.test(text) ? text : text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Sends one API call and returns the parsed JSON answer ({} for an empty one).
 * @param {string} method
 * @param {string} path e.g. `/v1/jobs`
 * @param {{body?: unknown, query?: Record<string, any>, signal?: AbortSignal, raw?: boolean}} [options]
 * @returns {Promise<any>}
 */
export async function request(method, path, options = {}) {
  const requestId = newRequestId();
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json", "X-Request-Id": requestId, ...authHeaders() };
  /** @type {RequestInit} */
  const init = { method, headers, signal: options.signal, credentials: "omit" };
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(path + queryString(options.query), init);
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError("The server could not be reached; check your connection and try again.", {
      requestId,
    });
  }
  if (!response.ok) {
    const error = await errorFrom(response, requestId);
    if (response.status === 401) unauthorizedListeners.forEach((fn) => fn());
    throw error;
  }
  if (options.raw) return response;
  const text = await response.text();
  return text ? JSON.parse(text) : {};
}

export const get = (/** @type {string} */ path, /** @type {any} */ query) =>
  request("GET", path, { query });
export const post = (/** @type {string} */ path, /** @type {unknown} */ body = {}) =>
  request("POST", path, { body });
export const patch = (
  /** @type {string} */ path,
  /** @type {unknown} */ body,
  /** @type {any} */ query,
) => request("PATCH", path, { body, query });
export const del = (/** @type {string} */ path) => request("DELETE", path);
