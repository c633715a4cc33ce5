// The shift: open it with its float, move cash in and out, close it with the drawer's count
// and show the closing summary (docs/protocol.md, "The till").
import { api, newKey, untilAnswered } from "../api.js";
import { basket } from "../basket.js";
import { h, localTime } from "../dom.js";
import { formatCents, parseCents } from "../money.js";
import { describe } from "../messages.js";

const METHOD = { cash: "Efectivo", card: "Tarjeta", wallet: "Billetera digital", unspecified: "Sin especificar" };
export const methodName = (m) => METHOD[m] ?? m;

function moneyInput(id, attrs = {}) {
  return h("input", { id, inputmode: "decimal", autocomplete: "off", placeholder: "0.00", class: "money", ...attrs });
}

/** A form whose submit runs `act` once at a time, with its message line. */
function form(id, children, act) {
  const msg = h("p", { class: "msg", id: `${id}-msg`, role: "alert" });
  const f = h("form", { class: "card narrow", id, autocomplete: "off" }, ...children, msg);
  let busy = false;
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (busy) return;
    busy = true;
    msg.textContent = "";
    try {
      await act((text, kind = "error") => {
        msg.dataset.kind = kind;
        msg.textContent = text;
      });
    } catch (err) {
      msg.dataset.kind = "error";
      msg.textContent = describe(err);
    } finally {
      busy = false;
    }
  });
  return f;
}

const retrying = (say) => () => say("Sin respuesta de la tienda; reintentando…", "info");

export function renderOpen(app) {
  const till = h("input", { id: "open-till", value: app.till, maxlength: "64", required: true, autocomplete: "off" });
  const float = moneyInput("open-float", { autofocus: true, value: "" });
  const key = newKey();
  app.keyHandler = null;
  return h(
    "div",
    { class: "center" },
    form(
      "open-form",
      [
        h("h1", {}, "Abrir turno"),
        h("p", { class: "muted" }, "Cuente el fondo de caja con el que empieza."),
        h("label", { for: "open-till" }, "Caja"),
        till,
        h("label", { for: "open-float" }, "Fondo inicial (S/)"),
        float,
        h("button", { class: "primary big", type: "submit", id: "open-go" }, "Abrir turno"),
      ],
      async (say) => {
        const cents = parseCents(float.value || "0");
        if (cents === null) return say("Monto no válido. Use por ejemplo 100.00");
        if (!/^[A-Za-z0-9._-]{1,64}$/.test(till.value.trim())) return say("Caja no válida (letras, números, . _ -).");
        const { body } = await untilAnswered(() => api.openShift(till.value.trim(), cents, key), retrying(say));
        app.setShift(body);
        app.toast(`Turno ${body.shift_id} abierto con ${formatCents(cents)}.`, "ok");
        app.go(basket.locked ? "pay" : "sell");
      },
    ),
  );
}

export function renderCash(app) {
  const kind = h(
    "div",
    { class: "choice", role: "radiogroup" },
    h("label", {}, h("input", { type: "radio", name: "kind", value: "in", id: "cash-in" }), "Ingreso"),
    h("label", {}, h("input", { type: "radio", name: "kind", value: "out", id: "cash-out", checked: true }), "Egreso"),
  );
  const amount = moneyInput("cash-amount", { autofocus: true });
  const reason = h("input", { id: "cash-reason", maxlength: "64", placeholder: "p. ej. pago a proveedor" });
  let key = newKey();
  app.keyHandler = (e) => (e.key === "Escape" ? (app.go("sell"), true) : false);
  return h(
    "div",
    { class: "center" },
    form(
      "cash-form",
      [
        h("h1", {}, "Ingreso o egreso de efectivo"),
        kind,
        h("label", { for: "cash-amount" }, "Monto (S/)"),
        amount,
        h("label", { for: "cash-reason" }, "Motivo"),
        reason,
        h("div", { class: "row" },
          h("button", { class: "ghost big", type: "button", onclick: () => app.go("sell") }, "Volver (Esc)"),
          h("button", { class: "primary big", type: "submit", id: "cash-go" }, "Registrar")),
      ],
      async (say) => {
        const cents = parseCents(amount.value);
        if (!cents) return say("Ingrese un monto mayor que cero.");
        const k = kind.querySelector("input:checked")?.value ?? "out";
        const body = { kind: k, amount_cents: cents };
        if (reason.value.trim()) body.reason = reason.value.trim();
        await untilAnswered(() => api.cashMovement(app.shiftId, body, key), retrying(say));
        key = newKey();
        app.toast(`${k === "in" ? "Ingreso" : "Egreso"} de ${formatCents(cents)} registrado.`, "ok");
        app.go("sell");
      },
    ),
  );
}

export function renderClose(app) {
  const counted = moneyInput("close-counted", { autofocus: true });
  const key = newKey();
  app.keyHandler = (e) => (e.key === "Escape" ? (app.go("sell"), true) : false);
  return h(
    "div",
    { class: "center" },
    form(
      "close-form",
      [
        h("h1", {}, "Cerrar turno"),
        h("p", { class: "muted" }, "Cuente el efectivo del cajón e ingrese el total. El sistema le mostrará la diferencia."),
        h("label", { for: "close-counted" }, "Efectivo contado (S/)"),
        counted,
        h("div", { class: "row" },
          h("button", { class: "ghost big", type: "button", onclick: () => app.go("sell") }, "Volver (Esc)"),
          h("button", { class: "danger big", type: "submit", id: "close-go" }, "Cerrar turno")),
      ],
      async (say) => {
        if (basket.locked) return say("Hay una venta enviándose: espere a que termine.");
        const cents = parseCents(counted.value);
        if (cents === null) return say("Monto no válido. Use por ejemplo 435.50");
        const { body } = await untilAnswered(() => api.closeShift(app.shiftId, cents, key), retrying(say));
        app.setShift(null);
        app.go("summary", { shift: body });
      },
    ),
  );
}

function row(label, value, attrs = {}) {
  return h("tr", attrs, h("th", {}, label), h("td", {}, value));
}

export function renderSummary(app, { shift }) {
  const s = shift.summary;
  const diff = s.difference_cents ?? 0;
  const diffText = diff === 0 ? "Cuadra" : diff > 0 ? "Sobrante" : "Faltante";
  app.keyHandler = (e) => (e.key === "Enter" ? (app.go("open"), true) : false);
  const methods = Object.entries(s.by_method ?? {}).map(([m, c]) => row(`· ${methodName(m)}`, formatCents(c)));
  return h(
    "div",
    { class: "center" },
    h(
      "div",
      { class: "card wide", id: "summary" },
      h("h1", {}, "Turno cerrado"),
      h("p", { class: "muted" }, `${shift.shift_id} · Caja ${shift.till_id} · ${localTime(shift.opened_at)} – ${localTime(shift.closed_at)}`),
      h(
        "div",
        { class: "cols" },
        h(
          "table",
          { class: "figures" },
          h("caption", {}, "Ventas"),
          row("Ventas", String(s.sales_count)),
          row("Ventas brutas", formatCents(s.gross_cents)),
          row("Devoluciones", formatCents(s.returns_cents)),
          row("Ventas netas", formatCents(s.net_cents)),
          ...methods,
        ),
        h(
          "table",
          { class: "figures" },
          h("caption", {}, "Efectivo en caja"),
          row("Fondo inicial", formatCents(shift.opening_float_cents)),
          row("Ingresos", formatCents(s.cash_in_cents)),
          row("Egresos", formatCents(s.cash_out_cents)),
          row("Esperado", formatCents(s.expected_cash_cents), { id: "sum-expected" }),
          row("Contado", formatCents(s.counted_cash_cents), { id: "sum-counted" }),
          row(`Diferencia (${diffText})`, formatCents(diff), {
            id: "sum-diff", class: diff === 0 ? "ok" : "bad", "data-cents": String(diff),
          }),
        ),
      ),
      h("div", { class: "row" },
        h("button", { class: "ghost big", type: "button", onclick: () => app.logout() }, "Cerrar sesión"),
        h("button", { class: "primary big", type: "button", id: "summary-new", onclick: () => app.go("open") }, "Abrir otro turno (Enter)")),
    ),
  );
}

