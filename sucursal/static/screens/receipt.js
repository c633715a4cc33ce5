// The receipt of a recorded sale, on screen and printable at 80 mm (app.css, @media print).
// The last sales of this session are remembered so a return can list their lines.
import { h, localTime } from "../dom.js";
import { formatCents } from "../money.js";
import { methodName } from "./shift.js";

const RECENT = "colmena.recent";
const KEEP = 50;

/** Keeps a sale (with its product names) for the returns screen. */
export function remember(sale, names) {
  const list = recent().filter((s) => s.sale_id !== sale.sale_id);
  list.unshift({ sale_id: sale.sale_id, lines: sale.lines.map((l) => ({ ...l, name: names[l.product_id] ?? l.product_id })) });
  sessionStorage.setItem(RECENT, JSON.stringify(list.slice(0, KEEP)));
}

export function recent() {
  try {
    return JSON.parse(sessionStorage.getItem(RECENT) ?? "[]");
  } catch {
    return [];
  }
}

export function ticket(sale, names, user) {
  return h(
    "div",
    { class: "ticket", id: "ticket" },
    h("p", { class: "t-head" }, h("b", {}, `Tienda ${sale.branch_id}`), h("br"), "Comprobante de venta"),
    h("p", {}, `N.° ${sale.sale_id}`, h("br"), localTime(sale.sold_at), h("br"), `Atendió: ${user?.name ?? sale.cashier_id ?? ""}`),
    h(
      "table",
      {},
      sale.lines.map((l) =>
        h("tr", {},
          h("td", {}, `${l.quantity} × ${names[l.product_id] ?? l.product_id}`, h("br"), h("small", {}, `${formatCents(l.unit_price_cents)} c/u`)),
          h("td", { class: "num" }, formatCents(l.line_total_cents))),
      ),
      h("tr", { class: "t-total" }, h("td", {}, "TOTAL"), h("td", { class: "num", id: "receipt-total" }, formatCents(sale.total_cents))),
      sale.payments.map((p) => h("tr", {}, h("td", {}, methodName(p.method)), h("td", { class: "num" }, formatCents(p.amount_cents)))),
      h("tr", {}, h("td", {}, "Vuelto"), h("td", { class: "num", id: "receipt-change" }, formatCents(sale.change_cents))),
    ),
    h("p", { class: "t-foot" }, "¡Gracias por su compra!"),
  );
}

export function render(app, { sale, names, replayed }) {
  app.keyHandler = (e) => {
    if (e.key === "Enter" || e.key === "Escape") {
      app.go("sell");
      return true;
    }
    if (e.key === "F12" || (e.ctrlKey && e.key === "p")) {
      window.print();
      return true;
    }
    return false;
  };
  return h(
    "div",
    { class: "receipt-screen" },
    h(
      "section",
      { class: "card" },
      h("h1", { class: "ok", id: "sale-ok", "data-sale": sale.sale_id }, "Venta registrada"),
      h("p", { class: "big-change" }, "Vuelto ", h("b", { id: "change" }, formatCents(sale.change_cents))),
      replayed ? h("p", { class: "muted" }, "La tienda confirmó la venta enviada antes (no se duplicó).") : null,
      h("p", { class: "muted" }, "Se enviará a la central en segundo plano."),
      h("div", { class: "row" },
        h("button", { class: "ghost big", type: "button", id: "print", onclick: () => window.print() }, "Imprimir"),
        h("button", { class: "primary big", type: "button", id: "next-sale", autofocus: true, onclick: () => app.go("sell") },
          "Nueva venta (Enter)")),
    ),
    ticket(sale, names, app.user),
  );
}
