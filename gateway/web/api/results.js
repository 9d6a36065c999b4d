// @ts-check
// Extracted values: /v1/jobs/{job}/results, their versions, and the review queue.
import { get, post, patch, request } from "../api.js";

/** @param {string} job @param {{pageSize?: number, pageToken?: string}} [page] */
export const listResults = (job, { pageSize = 50, pageToken = "" } = {}) =>
  get(`/v1/${job}/results`, { pageSize, pageToken });

/**
 * Corrects one value (UpdateResult). The mask is `values` with a map holding only that value:
 * the service updates (and marks reviewed) the fields the map names and keeps the others. Not
 * `values.<field>`: the gateway reads a query FieldMask in its JSON (camelCase) form, which
 * turns `values.invoice_number` into an error and `values.invoiceNumber` into another field.
 * The reason travels in the query (the body is the result) and is kept with the new version.
 * The result's `etag`, when the caller read one, goes back with it: a result someone changed
 * since is refused (409, code ABORTED) instead of overwritten unseen.
 * @param {{name: string, etag?: string}} result @param {string} field @param {unknown} value
 * @param {string} [reason]
 */
export const updateValue = (result, field, value, reason = "") =>
  patch(
    `/v1/${result.name}`,
    { values: { [field]: value }, ...(result.etag ? { etag: result.etag } : {}) },
    { updateMask: "values", reason },
  );

/** Whether an API error is a correction refused because the result changed since it was read. @param {any} error */
export const changedMeanwhile = (error) => error?.code === "ABORTED";

/** One result as it is now, with its etag. @param {string} result `jobs/{job}/results/{result}` */
export const getResult = (result) => get(`/v1/${result}`);

/** A result's versions, oldest first. @param {string} result `jobs/{job}/results/{result}` */
export const listVersions = (result) => get(`/v1/${result}/versions`, { pageSize: 100 });

/**
 * Restores an earlier version as a new one. `etag`, the result's as read, refuses the revert
 * (ABORTED) when the result changed since: it would undo a correction the user never saw.
 * @param {string} result @param {string} version @param {{reason?: string, etag?: string}} [options]
 */
export const revertResult = (result, version, { reason = "", etag = "" } = {}) =>
  post(`/v1/${result}:revert`, { version, reason, ...(etag ? { etag } : {}) });

/**
 * The values that need review, most consequential first.
 * @param {string} job `jobs/{job}` or `jobs/-`
 * @param {{pageSize?: number, pageToken?: string, signal?: AbortSignal}} [page]
 */
export const listReviewItems = (job, { pageSize = 100, pageToken = "", signal } = {}) =>
  request("GET", `/v1/${job}/reviewItems`, { query: { pageSize, pageToken }, signal });

/**
 * Accepts a value as it is. The item's `etag` (its result's when listed) goes with it: a value
 * changed since is refused (ABORTED) instead of marked reviewed unseen.
 * @param {{name: string, etag?: string}} item
 */
export const acceptReviewItem = (item) =>
  post(`/v1/${item.name}:accept`, item.etag ? { etag: item.etag } : {});
