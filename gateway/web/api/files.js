// @ts-check
// A job's source files: /v1/jobs/{job}/files.
import { get, post, request } from "../api.js";

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

/**
 * One page of a PDF, or an image, drawn as a PNG by the server (IngestService.RenderPage).
 * The bytes come with the credential header, so the image is shown from a blob: URL; the
 * caller revokes `url` when it is done with it.
 * @param {string} file `jobs/{job}/files/{file}` @param {{page?: number, width?: number}} [options]
 * @returns {Promise<{url: string, width: number, height: number, pageCount: number}>}
 */
export async function renderPage(file, { page = 1, width = 1200 } = {}) {
  /** @type {Response} */
  const response = await request("GET", `/v1/${file}:renderPage`, { query: { page, width }, raw: true });
  const blob = await response.blob();
  const header = (/** @type {string} */ name) => Number(response.headers.get(name) || 0);
  return {
    url: URL.createObjectURL(blob),
    width: header("x-image-width"),
    height: header("x-image-height"),
    pageCount: header("x-page-count") || 1,
  };
}
