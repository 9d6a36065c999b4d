// @ts-check
// Signing in and out. Dev mode: the dev token the server hands out in dev mode only.
// Production: OpenID Connect authorization code + PKCE against the configured issuer, or an
// API key pasted by the user. The credential lives in memory and in sessionStorage (this tab
// only, gone when it closes) so a reload keeps you signed in; never in localStorage.
import { setCredential, getCredential, ApiError } from "./api.js";
import { syncCurrentUser } from "./api/users.js";

const STORED = "bytereview.credential";
const SIGNED_OUT = "bytereview.signedOut";
const PKCE = "bytereview.pkce";

/** @type {any} */
let config = { auth: { mode: "apiKey" } };
/** @type {any} */
let user = null;

export async function loadConfig() {
  const response = await fetch("/app-config.json", { credentials: "omit", cache: "no-store" });
  if (!response.ok) throw new ApiError("The app's configuration could not be loaded.");
  config = await response.json();
  return config;
}

export const authMode = () => /** @type {string} */ (config.auth.mode);
/** Whether single sign-on (OpenID Connect) is configured. */
export const hasOidc = () => Boolean(config.auth.oidc);
export const currentUser = () => user;

/**
 * Restores the session of this tab, or signs in with the dev token in dev mode.
 * @returns {Promise<any>} the user, or null when the user must sign in
 */
export async function restoreSession() {
  const stored = sessionStorage.getItem(STORED);
  if (stored) {
    setCredential(JSON.parse(stored));
  } else if (authMode() === "dev" && !sessionStorage.getItem(SIGNED_OUT)) {
    setCredential({ kind: "bearer", value: config.auth.devToken, source: "dev" });
  }
  if (!getCredential()) return null;
  try {
    return await finishSignIn();
  } catch (error) {
    forget();
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

async function finishSignIn() {
  user = await syncCurrentUser();
  const credential = getCredential();
  if (credential) sessionStorage.setItem(STORED, JSON.stringify(credential));
  sessionStorage.removeItem(SIGNED_OUT);
  return user;
}

export async function signInWithDevToken() {
  setCredential({ kind: "bearer", value: config.auth.devToken, source: "dev" });
  return finishSignIn().catch((error) => {
    forget();
    throw error;
  });
}

/**
 * An API key (`brk_...`), or the dev token `bytereview up` prints when the gateway is bound
 * to an address other machines reach (it hands the token out on loopback only).
 * @param {string} key
 */
export async function signInWithApiKey(key) {
  const value = key.trim();
  const kind = value.startsWith("brk_") ? "apiKey" : "bearer";
  setCredential({ kind, value, source: "apiKey" });
  return finishSignIn().catch((error) => {
    forget();
    // The API's reason is for programs ("invalid bearer token: Not enough segments" for a
    // key cut short): the person pasting it needs to know what to check.
    if (error instanceof ApiError && error.status === 401) {
      throw new ApiError(
        kind === "apiKey"
          ? "This API key was not accepted: it may be revoked, or not copied whole. Paste it again, or make a new one."
          : "This is not an API key ByteReview made (they start with brk_), nor a token it accepts. Paste the key again.",
        { status: 401, code: error.code, requestId: error.requestId },
      );
    }
    throw error;
  });
}

export function signOut() {
  forget();
  sessionStorage.setItem(SIGNED_OUT, "1");
}

function forget() {
  setCredential(null);
  user = null;
  sessionStorage.removeItem(STORED);
}

// --- OpenID Connect, authorization code + PKCE (RFC 7636) ---

async function discovery() {
  const issuer = String(config.auth.oidc.issuer).replace(/\/$/, "");
  const response = await fetch(`${issuer}/.well-known/openid-configuration`, {
    credentials: "omit",
  });
  if (!response.ok) throw new ApiError("The sign-in provider could not be reached.");
  return response.json();
}

/** @param {Uint8Array} bytes */
function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

const redirectUri = () => `${location.origin}/app/callback`;

/** Sends the browser to the identity provider. */
export async function signInWithOidc() {
  const provider = await discovery();
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  sessionStorage.setItem(PKCE, JSON.stringify({ verifier, state }));
  const params = new URLSearchParams({
    response_type: "code",
    client_id: config.auth.oidc.clientId,
    redirect_uri: redirectUri(),
    scope: config.auth.oidc.scopes,
    state,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: "S256",
  });
  location.assign(`${provider.authorization_endpoint}?${params}`);
}

/** Completes the redirect back from the provider (`/app/callback?code=...&state=...`). */
export async function completeOidc() {
  const query = new URLSearchParams(location.search);
  const saved = JSON.parse(sessionStorage.getItem(PKCE) || "{}");
  sessionStorage.removeItem(PKCE);
  if (query.get("error")) {
    throw new ApiError(`Sign-in failed: ${query.get("error_description") || query.get("error")}`);
  }
  if (!query.get("code") || query.get("state") !== saved.state) {
    throw new ApiError("Sign-in failed: the answer from the provider does not match this tab.");
  }
  const provider = await discovery();
  const response = await fetch(provider.token_endpoint, {
    method: "POST",
    credentials: "omit",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: /** @type {string} */ (query.get("code")),
      redirect_uri: redirectUri(),
      client_id: config.auth.oidc.clientId,
      code_verifier: saved.verifier,
    }),
  });
  if (!response.ok) throw new ApiError("Sign-in failed: the provider refused the code.");
  const tokens = await response.json();
  // The API verifies a JWT for its audience: the ID token when that audience is this client,
  // the access token otherwise.
  const audience = config.auth.oidc.audience;
  const token =
    !audience || audience === config.auth.oidc.clientId
      ? tokens.id_token || tokens.access_token
      : tokens.access_token;
  setCredential({ kind: "bearer", value: token, source: "oidc" });
  return finishSignIn().catch((error) => {
    forget();
    throw error;
  });
}
