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

/** A template's versions, newest first, each with its golden-set score. @param {string} template */
export const listTemplateVersions = (template) => get(`/v1/${template}/versions`, { pageSize: 50 });
/** Scores a version on its template's golden documents. @param {string} version */
export const scoreTemplateVersion = (version) => post(`/v1/${version}:score`);
/** Marks a result golden for a template. @param {string} template @param {string} result */
export const createGoldenDocument = (template, result) =>
  post(`/v1/${template}/goldenDocuments`, { result });
/** @param {string} template */
export const listGoldenDocuments = (template) => get(`/v1/${template}/goldenDocuments`, { pageSize: 100 });
