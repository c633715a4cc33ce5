// The cashier's page: boot, the screens, the keyboard and the session
// (docs/protocol.md, "The cashier's page"). Plain ES modules, no build step, no other host.
import { api, session, setUnauthorizedHandler } from "./api.js";
import { basket } from "./basket.js";
import { $, fill, h } from "./dom.js";
import { refreshStatus, startStatus } from "./status.js";
import * as login from "./screens/login.js";
import * as shift from "./screens/shift.js";
import * as sell from "./screens/sell.js";
import * as pay from "./screens/pay.js";
import * as receipt from "./screens/receipt.js";
import * as returns from "./screens/returns.js";

const SCREENS = {
  login: login.render,
  open: shift.renderOpen,
  sell: sell.render,
  pay: pay.render,
  receipt: receipt.render,
  returns: returns.render,
  cash: shift.renderCash,
  close: shift.renderClose,
  summary: shift.renderSummary,
};

const ROLE = { cashier: "Cajero(a)", supervisor: "Supervisor(a)", manager: "Gerente" };

function stored(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

export const app = {
  user: stored("colmena.user"),
  shiftId: sessionStorage.getItem("colmena.shift"),
  shift: null,
  till: sessionStorage.getItem("colmena.till") ?? "T1",
  current: null,
  keyHandler: null,

  /** Shows a screen; its render returns the element and may set app.keyHandler. */
  go(name, params = {}) {
    this.keyHandler = null;
    this.current = name;
    const root = $("#screen");
    root.dataset.screen = name;
    fill(root, SCREENS[name](this, params));
    const first = root.querySelector("[autofocus]");
    if (first) first.focus();
    renderUser();
  },

  setUser(u) {
    this.user = u;
    if (u) sessionStorage.setItem("colmena.user", JSON.stringify(u));
    else sessionStorage.removeItem("colmena.user");
    renderUser();
    refreshStatus();
  },

  setShift(s) {
    this.shift = s;
    this.shiftId = s?.status === "open" ? s.shift_id : null;
    if (this.shiftId) {
      sessionStorage.setItem("colmena.shift", this.shiftId);
      this.till = s.till_id;
      sessionStorage.setItem("colmena.till", s.till_id);
    } else sessionStorage.removeItem("colmena.shift");
    renderUser();
  },

  /** A message at the foot of the screen; kind: info | ok | error. */
  toast(text, kind = "info") {
    const t = $("#toast");
    t.dataset.kind = kind;
    t.textContent = text;
    t.hidden = !text;
    this.toastAt = Date.now();
    clearTimeout(this.toastTimer);
    if (text && kind !== "error") this.toastTimer = setTimeout(() => (t.hidden = true), 3000);
  },

  /** After a login: back to the open shift (and to a sale still waiting for its answer). */
  async resume() {
    if (this.shiftId) {
      try {
        const { body } = await api.shift(this.shiftId);
        if (body.status === "open" && body.opened_by === this.user?.user_id) {
          this.setShift(body);
          return this.go(basket.locked ? "pay" : "sell");
        }
      } catch {
        // Unknown or not ours: open a new one.
      }
      this.setShift(null);
    }
    this.go("open");
  },

  async logout() {
    if (basket.locked) return this.toast("Espere: hay una venta enviándose.", "error");
    try {
      await api.logout();
    } catch {
      // The session ends here anyway; the token is dropped below.
    }
    session.clear();
    this.setUser(null);
    this.go("login");
  },
};

function renderUser() {
  const u = app.user;
  const who = $("#who");
  if (!u || !session.token) return fill(who);
  fill(
    who,
    h("span", { class: "user", title: ROLE[u.role] ?? u.role }, u.name),
    app.shiftId ? h("span", { class: "shift" }, `Caja ${app.till} · ${app.shiftId}`) : null,
    h("button", { class: "ghost", id: "logout", type: "button", onclick: () => app.logout() }, "Salir"),
  );
}

// An expired or revoked session (or a restarted branch) sends back to the login screen;
// the basket, and a sale waiting for its answer, stay in sessionStorage for after it.
setUnauthorizedHandler(() => {
  if (app.current === "login") return;
  app.go("login", { expired: true });
});

document.addEventListener("keydown", (e) => {
  dismissToast();
  if (app.keyHandler && app.keyHandler(e) === true) e.preventDefault();
});
document.addEventListener("pointerdown", () => dismissToast());

/** A confirmation has been read once the cashier goes on working; errors stay. */
function dismissToast() {
  const t = $("#toast");
  if (!t.hidden && t.dataset.kind !== "error" && Date.now() - (app.toastAt ?? 0) > 500) t.hidden = true;
}

function boot() {
  startStatus();
  if (session.token && app.user) app.resume();
  else app.go("login");
  // The page is usable: the login (or resumed) screen is on and focused.
  const ready = Math.round(performance.now());
  document.documentElement.dataset.readyMs = String(ready);
  document.documentElement.dataset.ready = "true";
}

boot();
