// @ts-check
// UserService: the signed-in user and their API keys.
import { get, post, del } from "../api.js";

/** Creates or refreshes the caller's user record and returns it (name, email). */
export const syncCurrentUser = () => post("/v1/users/me:sync", {});
export const listApiKeys = () => get("/v1/users/me/apiKeys");
/** @param {string} displayName */
export const createApiKey = (displayName) => post("/v1/users/me/apiKeys", { displayName });
export const deleteApiKey = (/** @type {string} */ name) => del(`/v1/${name}`);
