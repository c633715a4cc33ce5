// Returns by sale id (docs/protocol.md, "Returns and voids"): the lines to give back, with
// what to refund and whether the units go back to stock. A sale made in this session lists
// its own lines; any other sale is returned by scanning or typing its products, or whole.
import { api, newKey, untilAnswered } from "../api.js";
import { $, fill, h } from "../dom.js";
import { formatCents } from "../money.js";
import { describe } from "../messages.js";
import { recent } from "./receipt.js";

const SALE_ID = /^[A-Z0-9_-]{2,16}-\d{10}$/;

/** "42" → "CUS-0000000042" at branch CUS; a whole id is kept (upper-cased). */
function saleId(text) {
  const t = text.trim().toUpperCase();
  const branch = $("#branch")?.textContent?.trim();
  if (/^\d{1,10}$/.test(t) && branch) return `${branch}-${t.padStart(10, "0")}`;
  return t;
}

export function render(app) {
  const idIn = h("input", { id: "ret-sale", autofocus: true, autocomplete: "off", placeholder: "p. ej. CUS-0000000042 o 42" });
  const lines = h("tbody", { id: "ret-lines" });
  const productIn = h("input", { id: "ret-product", autocomplete: "off", placeholder: "Código de barras o producto" });
  const method = h("select", { id: "ret-method" },
    h("option", { value: "" }, "Igual que la venta"),
    h("option", { value: "cash" }, "Efectivo"),
    h("option", { value: "card" }, "Tarjeta"),
    h("option", { value: "wallet" }, "Billetera"));
  const reason = h("input", { id: "ret-reason", maxlength: "64", placeholder: "p. ej. producto dañado" });
  const restock = h("input", { type: "checkbox", id: "ret-restock", checked: true });
  const msg = h("p", { class: "msg", id: "ret-msg", role: "alert" });
  let rows = []; // {product_id, name, sold|null, qty}
  let key = newKey();

  const say = (text, kind = "error") => {
    msg.dataset.kind = kind;
    msg.textContent = text;
  };

  function draw() {
    fill(
      lines,
      rows.length
        ? rows.map((r) =>
            h("tr", { "data-product": r.product_id },
              h("td", {}, r.name, r.sold !== null ? h("small", {}, `vendidos: ${r.sold}`) : null),
              h("td", {}, h("input", {
                class: "qty-in", inputmode: "numeric", value: String(r.qty), "aria-label": `Devolver de ${r.name}`,
                onchange: (e) => {
                  const v = e.target.value.trim();
                  r.qty = /^\d{1,7}$/.test(v) ? Number(v) : r.qty;
                  e.target.value = String(r.qty);
                },
              }))))
        : h("tr", {}, h("td", { colspan: "2", class: "empty" }, "Sin líneas: se devolverá la venta completa.")),
    );
  }

  function lookUp() {
    const id = saleId(idIn.value);
    idIn.value = id;
    const mine = recent().find((s) => s.sale_id === id);
    rows = mine ? mine.lines.map((l) => ({ product_id: l.product_id, name: l.name, sold: l.quantity, qty: 0 })) : [];
    draw();
    if (!SALE_ID.test(id)) return say("Número de venta no válido.");
    say(mine ? "Indique cuántas unidades de cada producto devuelve." : "Escanee los productos devueltos, o deje sin líneas para devolver todo.", "info");
    (mine ? lines.querySelector("input") : productIn)?.focus();
  }

  async function addProduct() {
    const t = productIn.value.trim();
    if (!t) return;
    try {
      const { body } = /^\d{8,14}$/.test(t) ? await api.byBarcode(t) : await api.search(t);
      const p = body.products[0];
      if (!p) return say(`Producto «${t}» no encontrado.`);
      const r = rows.find((x) => x.product_id === p.product_id);
      if (r) r.qty += 1;
      else rows.push({ product_id: p.product_id, name: p.name, sold: null, qty: 1 });
      productIn.value = "";
      draw();
    } catch (err) {
      say(describe(err));
    }
  }

  idIn.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      lookUp();
    }
  });
  productIn.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      addProduct();
    }
  });

  const form = h("form", { class: "card wide", id: "ret-form", autocomplete: "off" },
    h("h1", {}, "Devolución"),
    h("div", { class: "row" },
      h("div", { class: "field grow" }, h("label", { for: "ret-sale" }, "N.° de venta (escanee o escriba)"), idIn),
      h("button", { type: "button", class: "ghost big", id: "ret-find", onclick: lookUp }, "Buscar")),
    h("table", { class: "ret" }, h("thead", {}, h("tr", {}, h("th", {}, "Producto"), h("th", {}, "Devolver"))), lines),
    h("div", { class: "field" }, h("label", { for: "ret-product" }, "Agregar producto devuelto (Enter)"), productIn),
    h("div", { class: "row" },
      h("div", { class: "field grow" }, h("label", { for: "ret-method" }, "Reembolso"), method),
      h("div", { class: "field grow" }, h("label", { for: "ret-reason" }, "Motivo"), reason)),
    h("label", { class: "check" }, restock, "Los productos vuelven al stock"),
    msg,
    h("div", { class: "row" },
      h("button", { type: "button", class: "ghost big", onclick: () => app.go("sell") }, "Volver (Esc)"),
      h("button", { type: "submit", class: "primary big", id: "ret-go" }, "Registrar devolución")),
  );

  let busy = false;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (busy) return;
    const id = saleId(idIn.value);
    if (!SALE_ID.test(id)) return say("Número de venta no válido.");
    const chosen = rows.filter((r) => r.qty > 0).map((r) => ({ product_id: r.product_id, quantity: r.qty }));
    if (rows.length && !chosen.length) return say("Indique al menos una unidad a devolver.");
    const body = { restock: restock.checked, shift_id: app.shiftId };
    if (chosen.length) body.lines = chosen;
    if (method.value) body.refund_method = method.value;
    if (reason.value.trim()) body.reason = reason.value.trim();
    busy = true;
    try {
      const { body: r } = await untilAnswered(() => api.giveBack(id, body, key),
        () => say("Sin respuesta de la tienda; reintentando…", "info"));
      key = newKey();
      app.toast(`Devolución ${r.return_id} registrada: devolver ${formatCents(r.total_cents)} al cliente.`, "ok");
      app.go("sell");
    } catch (err) {
      key = newKey();
      say(describe(err));
    } finally {
      busy = false;
    }
  });

  app.keyHandler = (e) => (e.key === "Escape" ? (app.go("sell"), true) : false);
  draw();
  return form;
}
