// @ts-check
// Extracted values: /v1/jobs/{job}/results.
import { get, patch } from "../api.js";

/** @param {string} job @param {{pageSize?: number, pageToken?: string}} [page] */
export const listResults = (job, { pageSize = 50, pageToken = "" } = {}) =>
  get(`/v1/${job}/results`, { pageSize, pageToken });

/**
 * Corrects one value (UpdateResult). The mask is the whole `values` map, sent with the one
 * value changed: the gateway reads a query FieldMask in its JSON (camelCase) form, which turns
 * `values.invoice_number` into an error and `values.invoiceNumber` into another field's name.
 * @param {{name: string, values?: Record<string, unknown>}} result @param {string} field @param {unknown} value
 */
export const updateValue = (result, field, value) =>
  patch(`/v1/${result.name}`, { values: { ...(result.values || {}), [field]: value } }, { updateMask: "values" });
