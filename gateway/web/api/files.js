// @ts-check
// A job's source files: /v1/jobs/{job}/files.
import { post, request } from "../api.js";

/**
 * @param {string} job
 * @param {{pageSize?: number, pageToken?: string, signal?: AbortSignal}} [page] `signal` stops
 * the request (a page left while its files were still coming)
 */
export const listFiles = (job, { pageSize = 500, pageToken = "", signal } = {}) =>
  request("GET", `/v1/${job}/files`, { query: { pageSize, pageToken }, signal });

/**
 * Every file of a job, page by page; an aborted `signal` stops between pages and mid-request.
 * @param {string} job @param {AbortSignal} [signal] @returns {Promise<any[]>}
 */
export async function listAllFiles(job, signal) {
  const files = [];
  let pageToken = "";
  do {
    const page = await listFiles(job, { pageSize: 1000, pageToken, signal });
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
 * caller revokes `url` when it is done with it. An aborted `signal` rejects (AbortError)
 * before any URL is made.
 * @param {string} file `jobs/{job}/files/{file}`
 * @param {{page?: number, width?: number, signal?: AbortSignal}} [options]
 * @returns {Promise<{url: string, width: number, height: number, pageCount: number}>}
 */
export async function renderPage(file, { page = 1, width = 1200, signal } = {}) {
  /** @type {Response} */
  const response = await request("GET", `/v1/${file}:renderPage`, {
    query: { page, width },
    raw: true,
    signal,
  });
  const blob = await response.blob();
  const header = (/** @type {string} */ name) => Number(response.headers.get(name) || 0);
  return {
    url: URL.createObjectURL(blob),
    width: header("x-image-width"),
    height: header("x-image-height"),
    pageCount: header("x-page-count") || 1,
  };
}
