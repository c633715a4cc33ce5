// Paying: cash (received → change), card, wallet or split. The sale is sent with the
// basket's own Idempotency-Key and retried with that same key and body until the branch
// answers, so a lost answer never sells twice; "Venta registrada" only follows the 201
// (docs/protocol.md, "Idempotency keys" and "The till").
import { api, ApiError, untilAnswered } from "../api.js";
import { basket } from "../basket.js";
import { fill, h } from "../dom.js";
import { formatCents, parseCents } from "../money.js";
import { describe, shortages } from "../messages.js";
import { remember } from "./receipt.js";

const METHODS = [
  ["cash", "Efectivo"],
  ["card", "Tarjeta"],
  ["wallet", "Billetera (Yape/Plin)"],
  ["split", "Pago mixto"],
];

let sending = false;

/** The payments for `method`, or a Spanish reason why they cannot settle `total`. */
function payments(method, total, fields) {
  const amt = (name) => {
    const v = fields[name].value.trim();
    return v === "" ? 0 : parseCents(v);
  };
  if (method === "card" || method === "wallet") return { payments: [{ method, amount_cents: total }] };
  if (method === "cash") {
    const got = fields.received.value.trim() === "" ? total : amt("received");
    if (got === null) return { error: "Monto recibido no válido." };
    if (got < total) return { error: `Falta ${formatCents(total - got)}.` };
    return { payments: [{ method: "cash", amount_cents: got }], change: got - total };
  }
  const parts = { cash: amt("cash"), card: amt("card"), wallet: amt("wallet") };
  if (Object.values(parts).some((v) => v === null)) return { error: "Algún monto no es válido." };
  const noncash = parts.card + parts.wallet;
  const paid = noncash + parts.cash;
  if (noncash > total) return { error: "Tarjeta y billetera no pueden superar el total." };
  if (paid < total) return { error: `Falta ${formatCents(total - paid)}.` };
  const list = Object.entries(parts)
    .filter(([, v]) => v > 0)
    .map(([method, amount_cents]) => ({ method, amount_cents }));
  return { payments: list, change: paid - total };
}

export function render(app) {
  const total = basket.total();
  const fields = {
    received: h("input", { id: "pay-received", class: "money", inputmode: "decimal", autocomplete: "off",
      placeholder: "Exacto", autofocus: true }),
    cash: h("input", { id: "pay-cash", class: "money", inputmode: "decimal", autocomplete: "off", placeholder: "0.00" }),
    card: h("input", { id: "pay-card", class: "money", inputmode: "decimal", autocomplete: "off", placeholder: "0.00" }),
    wallet: h("input", { id: "pay-wallet", class: "money", inputmode: "decimal", autocomplete: "off", placeholder: "0.00" }),
  };
  const change = h("output", { id: "pay-change" }, formatCents(0));
  const msg = h("p", { class: "msg", id: "pay-msg", role: "alert" });
  const detail = h("div", { class: "pay-detail" });
  const confirm = h("button", { class: "primary huge", id: "pay-go", type: "submit" }, "Confirmar pago (Enter)");
  const back = h("button", { class: "ghost big wide-btn", id: "pay-back", type: "button", onclick: () => app.go("sell") }, "Volver (Esc)");
  let method = "cash";

  const say = (text, kind = "error") => {
    msg.dataset.kind = kind;
    msg.textContent = text;
  };

  const radios = METHODS.map(([m, label]) =>
    h("label", { class: "method" },
      h("input", { type: "radio", name: "method", value: m, id: `pay-${m}-method`, checked: m === method,
        onchange: () => choose(m) }),
      label),
  );

  function field(label, input) {
    return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
  }

  function choose(m) {
    method = m;
    if (m === "cash") fill(detail, field("Recibido (S/)", fields.received), h("p", { class: "change" }, "Vuelto ", change));
    else if (m === "split")
      fill(detail, field("Tarjeta (S/)", fields.card), field("Billetera (S/)", fields.wallet),
        field("Efectivo (S/)", fields.cash), h("p", { class: "change" }, "Vuelto ", change));
    else fill(detail, h("p", { class: "muted" }, `Cobre ${formatCents(total)} con ${m === "card" ? "la tarjeta" : "la billetera digital"}.`));
    update();
    const first = detail.querySelector("input");
    if (first && !sending) first.focus();
  }

  function update() {
    const r = payments(method, total, fields);
    change.textContent = r.error ?? formatCents(r.change ?? 0);
    change.dataset.cents = r.error ? "" : String(r.change ?? 0);
  }
  Object.values(fields).forEach((f) => f.addEventListener("input", update));

  function lock(on) {
    for (const el of [confirm, back, ...Object.values(fields)]) el.disabled = on;
    for (const r of radios) r.querySelector("input").disabled = on;
  }

  async function send() {
    if (sending) return;
    sending = true;
    lock(true);
    const { body, key } = basket.pending;
    say("Registrando la venta…", "info");
    try {
      const res = await untilAnswered(
        () => api.sell(body, key),
        (n) => say(`Sin respuesta de la tienda: reintentando (${n}) con la misma venta; no se cobrará dos veces.`, "info"),
      );
      const names = Object.fromEntries(basket.lines.map((l) => [l.product_id, l.name]));
      remember(res.body, names);
      basket.sold();
      app.go("receipt", { sale: res.body, names, replayed: res.replayed });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return; // back to login; resumed after it
      basket.refused();
      lock(false);
      say(err?.code === "insufficient_stock" ? await shortages(basket.lines) : describe(err));
    } finally {
      sending = false;
    }
  }

  const form = h("form", { class: "pay", id: "pay-form", autocomplete: "off" },
    h("section", { class: "card" },
      h("h1", {}, "Cobrar"),
      h("p", { class: "due" }, "Total ", h("b", { id: "pay-total" }, formatCents(total))),
      h("p", { class: "muted" }, `${basket.count()} unidades · ${basket.lines.length} productos`),
      h("div", { class: "methods", role: "radiogroup", "aria-label": "Medio de pago" }, radios)),
    h("section", { class: "card" }, detail, msg, confirm, back),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (basket.locked) return send();
    const r = payments(method, total, fields);
    if (r.error) return say(r.error);
    const items = basket.lines.map((l) => ({ product_id: l.product_id, quantity: l.quantity }));
    basket.freeze({ items, shift_id: app.shiftId, payments: r.payments });
    send();
  });

  app.keyHandler = (e) => {
    if (e.key === "Escape" && !basket.locked) {
      app.go("sell");
      return true;
    }
    return false;
  };

  choose(method);
  if (basket.locked) {
    // Back from a login, or a reload, with a sale whose answer never came: send it again.
    queueMicrotask(send);
  }
  return form;
}
