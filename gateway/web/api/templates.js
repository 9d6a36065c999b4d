// @ts-check
// TemplateService: /v1/templates, /v1/dataTypes, /v1/systemPrompts.
import { get, post, patch, del } from "../api.js";

export const listTemplates = ({ pageSize = 100, pageToken = "" } = {}) =>
  get("/v1/templates", { pageSize, pageToken });
export const getTemplate = (/** @type {string} */ name) => get(`/v1/${name}`);
/** @param {{displayName: string, description?: string, fields: any[]}} template */
export const createTemplate = (template) => post("/v1/templates", template);
/** @param {{name: string, displayName?: string, fields?: any[]}} template */
export const updateTemplate = (template) => patch(`/v1/${template.name}`, template);
export const deleteTemplate = (/** @type {string} */ name) => del(`/v1/${name}`);
export const listDataTypes = () => get("/v1/dataTypes");
export const listSystemPrompts = () => get("/v1/systemPrompts");
