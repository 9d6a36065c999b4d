// @ts-check
// JobService's REST routes: /v1/jobs and /v1/jobs/{job}...
import { get, post, del, request } from "../api.js";

/** @param {{pageSize?: number, pageToken?: string, status?: string}} [options] */
export const listJobs = ({ pageSize = 20, pageToken = "", status = "" } = {}) =>
  get("/v1/jobs", { pageSize, pageToken, status });

/** @param {string} name `jobs/{job}` */
export const getJob = (name) => get(`/v1/${name}`);

/**
 * @param {{displayName: string, files: {path: string, sizeBytes: number, contentType?: string}[], requestId: string}} job
 */
export const createJob = (job) => post("/v1/jobs", job);

export const deleteJob = (/** @type {string} */ name) => del(`/v1/${name}`);
export const finalizeUploads = (/** @type {string} */ name) => post(`/v1/${name}:finalizeUploads`);
export const getProgress = (/** @type {string} */ name) => get(`/v1/${name}/progress`);

/** @typedef {{folder: string, taskMode: string}} FolderRule */

/**
 * Sets the configuration as a whole: fields, folder rules and the system prompt are replaced.
 * @param {string} name
 * @param {{fields?: {name: string, dataType: string, instruction?: string}[], template?: string, taskMode?: string, displayName?: string, folderRules?: FolderRule[], systemPrompt?: string}} config
 */
export const configureJob = (name, config) => post(`/v1/${name}:configure`, config);

/**
 * The tasks a configuration would run, by folder; nothing is saved.
 * @param {string} name @param {{taskMode?: string, folderRules?: FolderRule[]}} draft
 */
export const planTasks = (name, draft) => post(`/v1/${name}:planTasks`, draft);

export const startJob = (/** @type {string} */ name, /** @type {string} */ requestId) =>
  post(`/v1/${name}:start`, { requestId });
export const pauseJob = (/** @type {string} */ name) => post(`/v1/${name}:pause`);
export const resumeJob = (/** @type {string} */ name) => post(`/v1/${name}:resume`);
export const cancelJob = (/** @type {string} */ name) => post(`/v1/${name}:cancel`);
export const retryFailedTasks = (/** @type {string} */ name) =>
  post(`/v1/${name}:retryFailedTasks`);

/** @param {string} name @param {{pageSize?: number, pageToken?: string}} [page] */
export const listTasks = (name, { pageSize = 100, pageToken = "" } = {}) =>
  get(`/v1/${name}/tasks`, { pageSize, pageToken });

/** @param {string} name @param {{pageSize?: number, pageToken?: string}} [page] */
export const listEvents = (name, { pageSize = 100, pageToken = "" } = {}) =>
  get(`/v1/${name}/events`, { pageSize, pageToken });

/**
 * The export as a Blob with the file name the server suggests.
 * @param {string} name @param {"csv" | "xlsx" | "json"} format
 * @returns {Promise<{blob: Blob, filename: string}>}
 */
export async function exportResults(name, format) {
  /** @type {Response} */
  const response = await request("GET", `/v1/${name}:export`, { query: { format }, raw: true });
  const disposition = response.headers.get("content-disposition") || "";
  const found = /filename="?([^";]+)"?/.exec(disposition);
  const filename = found ? found[1] : `${name.split("/")[1]}.${format}`;
  return { blob: await response.blob(), filename };
}

/**
 * Extracts chosen files, failed tasks or chosen results again (a finished job only).
 * @param {string} name @param {{files?: string[], failedTasks?: boolean, results?: string[], fields?: string[], templateVersion?: string, force?: boolean}} choice
 */
export const rerunJob = (name, choice) => post(`/v1/${name}:rerun`, choice);
