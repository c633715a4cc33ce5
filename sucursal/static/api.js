// The branch's HTTP API as the till uses it (docs/protocol.md, "Branch endpoints").
// Same origin only; the session token lives in sessionStorage (this tab, gone when it closes),
// never in localStorage or a cookie.

const TOKEN = "colmena.token";

export class ApiError extends Error {
  /** status: HTTP status (0 = no answer); code: the error body's stable code. */
  constructor(status, code, message, body) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.body = body;
  }
  /** Nothing is known about the request's fate: it may or may not have been applied. */
  get unknownOutcome() {
    return this.status === 0 || this.status >= 500 || this.code === "idempotency_key_in_flight";
  }
}

let onUnauthorized = () => {};
/** Called when the branch answers 401 to a token we hold (expired, logged out, restarted). */
export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN);
  },
  set(token) {
    sessionStorage.setItem(TOKEN, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN);
  },
};

/** One request; resolves to {status, body, replayed} on 2xx, throws ApiError otherwise. */
export async function call(method, path, { body, key, auth = true, timeoutMs = 10000 } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const token = session.token;
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal,
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    throw new ApiError(0, "network", "sin respuesta de la tienda");
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (res.ok) return { status: res.status, body: data, replayed: res.headers.get("Idempotent-Replayed") === "true" };
  const code = data?.error?.code ?? "";
  const err = new ApiError(res.status, code, data?.error?.message ?? "", data);
  if (res.status === 401 && auth && code === "unauthorized" && token) {
    session.clear();
    onUnauthorized(err);
  }
  throw err;
}

export const api = {
  login: (user_id, pin) => call("POST", "/login", { body: { user_id, pin }, auth: false }),
  logout: () => call("POST", "/logout"),
  status: () => call("GET", "/status", { timeoutMs: 1500 }),
  search: (q) => call("GET", `/products/search?q=${encodeURIComponent(q)}&limit=12`),
  byBarcode: (code) => call("GET", `/products/search?barcode=${encodeURIComponent(code)}`),
  product: (id) => call("GET", `/inventory/${encodeURIComponent(id)}`),
  openShift: (till_id, opening_float_cents, key) =>
    call("POST", "/shifts", { body: { till_id, opening_float_cents }, key }),
  shift: (id) => call("GET", `/shifts/${encodeURIComponent(id)}`),
  cashMovement: (id, body, key) => call("POST", `/shifts/${encodeURIComponent(id)}/cash-movements`, { body, key }),
  closeShift: (id, counted_cash_cents, key) =>
    call("POST", `/shifts/${encodeURIComponent(id)}/close`, { body: { counted_cash_cents }, key }),
  sell: (body, key) => call("POST", "/sell", { body, key }),
  giveBack: (saleId, body, key) => call("POST", `/sales/${encodeURIComponent(saleId)}/returns`, { body, key }),
};

/** A fresh idempotency key (one per basket, per return, per till action). */
export function newKey() {
  return crypto.randomUUID();
}

/**
 * Sends a keyed POST until it gets a definitive answer: retried with the same key while the
 * outcome is unknown (no answer, 5xx, the same key still in flight), so a lost answer is
 * replayed by the branch rather than applied twice (docs/protocol.md, "Idempotency keys").
 * `onRetry(attempt, err)` is told of each retry; a 401 stops (the caller logs in again and
 * resumes with the same key).
 */
export async function untilAnswered(send, onRetry = () => {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (e) {
      if (!(e instanceof ApiError) || !e.unknownOutcome) throw e;
      onRetry(attempt, e);
      await new Promise((r) => setTimeout(r, Math.min(300 * attempt, 2000)));
    }
  }
}
