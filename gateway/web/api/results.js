// @ts-check
// Extracted values: /v1/jobs/{job}/results.
import { get, patch } from "../api.js";

/** @param {string} job @param {{pageSize?: number, pageToken?: string}} [page] */
export const listResults = (job, { pageSize = 50, pageToken = "" } = {}) =>
  get(`/v1/${job}/results`, { pageSize, pageToken });

/**
 * Corrects one value (UpdateResult with a `values.<field>` mask).
 * @param {string} result `jobs/{job}/results/{result}` @param {string} field @param {unknown} value
 */
export const updateValue = (result, field, value) =>
  patch(`/v1/${result}`, { values: { [field]: value } }, { updateMask: `values.${field}` });
