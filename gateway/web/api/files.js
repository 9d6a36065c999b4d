// @ts-check
// A job's source files: /v1/jobs/{job}/files.
import { get, post } from "../api.js";

/** @param {string} job @param {{pageSize?: number, pageToken?: string}} [page] */
export const listFiles = (job, { pageSize = 500, pageToken = "" } = {}) =>
  get(`/v1/${job}/files`, { pageSize, pageToken });

/** Every file of a job, page by page. @param {string} job @returns {Promise<any[]>} */
export async function listAllFiles(job) {
  const files = [];
  let pageToken = "";
  do {
    const page = await listFiles(job, { pageSize: 1000, pageToken });
    files.push(...(page.files || []));
    pageToken = page.nextPageToken || "";
  } while (pageToken);
  return files;
}

/** Runs the extraction on one file without starting the job. @param {string} file @param {any[]} fields */
export const previewExtraction = (file, fields) =>
  post(`/v1/${file}:previewExtraction`, { fields });
