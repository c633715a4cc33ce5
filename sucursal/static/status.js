// The status bar: is central reachable (the relay's circuit breaker), how many events wait
// in the outbox, how long since the last successful sync. Polled every second from
// `GET /status` (docs/protocol.md, "Branch endpoints"), so a dead central shows as offline
// within the breaker's own detection time plus one second.
import { api, session } from "./api.js";
import { $, fill, h } from "./dom.js";

const POLL_MS = 1000;
let last = null;
let lastOk = 0;

function ageText(iso) {
  if (!iso) return "nunca";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `hace ${s} s`;
  if (s < 3600) return `hace ${Math.floor(s / 60)} min`;
  return `hace ${Math.floor(s / 3600)} h`;
}

function show(state, label, pending, sync) {
  const net = $("#net");
  net.dataset.state = state;
  fill(net, h("span", { class: "dot", "aria-hidden": "true" }), label);
  const p = $("#pending");
  p.dataset.count = pending ?? "";
  fill(p, "Pendientes: ", h("b", {}, pending ?? "—"));
  fill($("#sync"), "Sincronizado: ", h("b", {}, sync));
}

function render() {
  if (!session.token) return show("unknown", "Sin sesión", null, "—");
  if (!last || Date.now() - lastOk > 3 * POLL_MS) {
    return show("down", "La tienda no responde", last?.outbox?.pending ?? null, "—");
  }
  const pushed = last.last_push_ok_at, pulled = last.last_pull_ok_at;
  const newest = [pushed, pulled].filter(Boolean).sort().pop() ?? null;
  const states = {
    closed: ["online", "En línea"],
    half_open: ["half", "Reconectando…"],
    open: ["offline", "Sin central — se vende igual"],
  };
  const [state, label] = states[last.circuit] ?? ["offline", "Sin conexión con central"];
  show(state, label, last.outbox.pending, ageText(newest));
  $("#branch").textContent = last.branch_id;
}

async function fetchStatus() {
  if (session.token) {
    try {
      last = (await api.status()).body;
      lastOk = Date.now();
    } catch {
      // Shown as "no answer from the store" once three polls went unanswered.
    }
  }
  render();
}

async function poll() {
  await fetchStatus();
  setTimeout(poll, POLL_MS);
}

/** At once, out of turn (right after a login, not a second later). */
export function refreshStatus() {
  fetchStatus();
}

export function startStatus() {
  render();
  poll();
}
