// The public API, from the browser: the signed-in caller, JSON requests that refresh an expired
// access token once, multipart uploads with progress (XMLHttpRequest), and server-sent events.
// Same origin as the gateway: no CORS, tokens travel in Authorization, never in cookies.

const STORE = "edgerag.console.session";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed (${status})`);
    this.status = status;
    this.code = error.code || "http_" + status;
    this.requestId = error.request_id || "";
  }
}

// Tokens live in memory and in this tab's sessionStorage (a reload keeps the session; closing the
// tab ends it). An API key is kept the same way; signing out forgets both.
export const session = {
  kind: null, // "api_key" | "user"
  token: null,
  refreshToken: null,
  expiresAt: 0,
  me: null,
  onEnded: () => {},

  load() {
    try {
      Object.assign(this, JSON.parse(sessionStorage.getItem(STORE) || "{}"));
    } catch {
      sessionStorage.removeItem(STORE);
    }
    return Boolean(this.token);
  },
  save() {
    const { kind, token, refreshToken, expiresAt, me } = this;
    sessionStorage.setItem(STORE, JSON.stringify({ kind, token, refreshToken, expiresAt, me }));
  },
  setTokens(pair) {
    this.kind = "user";
    this.token = pair.access_token;
    this.refreshToken = pair.refresh_token;
    this.expiresAt = Date.now() + pair.expires_in * 1000;
    this.save();
  },
  clear() {
    Object.assign(this, { kind: null, token: null, refreshToken: null, expiresAt: 0, me: null });
    sessionStorage.removeItem(STORE);
  },
};

async function body(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

let refreshing = null;

// One refresh at a time: a refresh token is single-use, and reusing a spent one ends the login.
function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const response = await fetch("/v1/auth/refresh", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refresh_token: session.refreshToken }),
      });
      const data = await body(response);
      if (!response.ok) {
        const error = new ApiError(response.status, data);
        session.clear();
        session.onEnded(error);
        throw error;
      }
      session.setTokens(data);
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// The access token to send: refreshed first when it has under a minute left.
export async function token() {
  if (session.kind === "user" && session.refreshToken && Date.now() > session.expiresAt - 60_000) {
    await refresh();
  }
  return session.token;
}

// fetch() with the caller's token; a 401 `token_expired` is refreshed and retried once.
export async function send(method, path, { json, data, headers = {}, signal } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const out = new Headers(headers);
    const bearer = await token();
    if (bearer) out.set("authorization", `Bearer ${bearer}`);
    let payload = data;
    if (json !== undefined) {
      out.set("content-type", "application/json");
      payload = JSON.stringify(json);
    }
    const response = await fetch(path, { method, headers: out, body: payload, signal });
    if (response.status === 401 && attempt === 0 && session.kind === "user") {
      const error = await body(response.clone());
      if (error && error.error && error.error.code === "token_expired") {
        await refresh();
        continue;
      }
    }
    if (response.status === 401 && session.me) {
      // The key was revoked, the user disabled or logged out elsewhere: sign in again.
      const error = new ApiError(401, await body(response));
      session.clear();
      session.onEnded(error);
      throw error;
    }
    return response;
  }
}

// A JSON request: the parsed reply, or an ApiError with the API's code and message.
export async function api(method, path, options) {
  const response = await send(method, path, options);
  const data = await body(response);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path, options) => api("GET", path, options);
export const post = (path, json, options) => api("POST", path, { ...options, json });

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) search.set(name, String(value));
  }
  const text = search.toString();
  return text ? "?" + text : "";
}

// --- signing in and out -------------------------------------------------------------------

export async function signInWithKey(key) {
  session.clear();
  Object.assign(session, { kind: "api_key", token: key.trim() });
  try {
    session.me = await get("/v1/auth/me");
  } catch (error) {
    session.clear();
    throw error;
  }
  session.save();
  return session.me;
}

export async function signInWithPassword(email, password, tenantId) {
  session.clear();
  const response = await fetch("/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: email.trim(), password, tenant_id: tenantId.trim() }),
  });
  const data = await body(response);
  if (!response.ok) throw new ApiError(response.status, data);
  session.setTokens(data);
  session.me = await get("/v1/auth/me");
  session.save();
  return session.me;
}

export async function signOut() {
  if (session.kind === "user") {
    try {
      await post("/v1/auth/logout", {});
    } catch {
      // the session ends here either way
    }
  }
  session.clear();
}

// --- uploads ------------------------------------------------------------------------------

function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// POST /v1/documents as multipart/form-data; `progress(fraction)` follows the bytes sent.
// An Idempotency-Key per file makes a retried upload one document, not two.
export async function upload(file, fields, progress) {
  const bearer = await token();
  const form = new FormData();
  form.append("file", file, file.name);
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/documents");
    xhr.setRequestHeader("authorization", `Bearer ${bearer}`);
    xhr.setRequestHeader("idempotency-key", randomKey());
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, null)));
    xhr.addEventListener("abort", () => reject(new ApiError(0, null)));
    xhr.send(form);
  });
}

// --- server-sent events -------------------------------------------------------------------

// The events of a text/event-stream response body as they arrive: {event, data (parsed JSON)}.
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let name = "message";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        if (line === "") {
          if (data.length) yield { event: name, data: JSON.parse(data.join("\n")) };
          name = "message";
          data = [];
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") name = value;
          else if (field === "data") data.push(value);
        }
      }
    }
  } finally {
    await reader.cancel().catch(() => {}); // a reader that stops early closes the stream
  }
}
