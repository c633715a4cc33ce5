// Selling: search as you type or scan (digits + Enter go straight to the basket), the
// basket with its quantities, and the way to the other screens (docs/protocol.md,
// "Catalog and stock rules" for the search).
import { api } from "../api.js";
import { basket } from "../basket.js";
import { fill, h } from "../dom.js";
import { formatCents } from "../money.js";
import { describe } from "../messages.js";

const BARCODE = /^\d{8,14}$/;
const DEBOUNCE_MS = 120;

export function render(app) {
  const input = h("input", {
    id: "search", type: "search", autofocus: true, autocomplete: "off", spellcheck: "false",
    placeholder: "Buscar producto o escanear código de barras…", "aria-label": "Buscar o escanear",
    "aria-controls": "results",
  });
  const results = h("ul", { id: "results", class: "results", role: "listbox" });
  const lines = h("tbody", { id: "basket-lines" });
  const total = h("b", { id: "total" });
  const units = h("span", { id: "units", class: "muted" });
  const payBtn = h("button", { class: "primary huge", id: "pay", type: "button", onclick: () => toPay() }, "Cobrar (F2)");
  const msg = h("p", { class: "msg", id: "sell-msg", role: "alert" });

  let found = [];
  let selected = 0;
  let searchSeq = 0;
  let timer = null;

  const say = (text, kind = "error") => {
    msg.dataset.kind = kind;
    msg.textContent = text;
  };

  function showResults() {
    if (!found.length && !input.value.trim()) {
      return fill(results, h("li", { class: "hint" },
        h("span", { class: "name" }, "Escanee el código de barras o escriba el nombre del producto."),
        h("span", { class: "meta" }, "Los resultados aparecen mientras escribe; Enter agrega el primero.")));
    }
    fill(
      results,
      found.map((p, i) =>
        h(
          "li",
          {
            role: "option", class: i === selected ? "sel" : "", "aria-selected": i === selected ? "true" : "false",
            "data-product": p.product_id, onclick: () => addProduct(p),
          },
          h("span", { class: "name" }, p.name),
          h("span", { class: "meta" }, `${p.product_id}${p.barcode ? ` · ${p.barcode}` : ""} · stock ${p.stock}`),
          h("span", { class: "price" }, formatCents(p.price_cents)),
        ),
      ),
    );
  }

  async function search(q) {
    const seq = ++searchSeq;
    if (!q) {
      found = [];
      return showResults();
    }
    try {
      const { body } = await api.search(q);
      if (seq !== searchSeq) return; // an older answer arriving late
      found = body.products;
      selected = 0;
      showResults();
    } catch (err) {
      if (seq === searchSeq && err.status !== 400) say(describe(err));
    }
  }

  function addProduct(p) {
    if (basket.locked) return say("Hay una venta enviándose; espere.");
    const line = basket.add(p);
    if (line && typeof p.stock === "number" && line.quantity > p.stock) {
      say(`Atención: ${p.name} — quedan ${p.stock} en stock.`, "info");
    } else say("");
    input.value = "";
    found = [];
    showResults();
    input.focus();
  }

  /** Enter: a barcode is looked up and added at once; otherwise the highlighted result. */
  async function enter() {
    const text = input.value.trim();
    if (!text) return;
    clearTimeout(timer);
    if (BARCODE.test(text)) {
      try {
        const { body } = await api.byBarcode(text);
        if (body.products.length) return addProduct(body.products[0]);
      } catch (err) {
        return say(describe(err));
      }
    }
    if (!found.length) await search(text);
    if (found.length) return addProduct(found[Math.min(selected, found.length - 1)]);
    say(BARCODE.test(text) ? `Código ${text} no encontrado.` : `Sin resultados para «${text}».`);
  }

  function renderBasket() {
    const ls = basket.lines;
    fill(
      lines,
      ls.length
        ? ls.map((l) =>
            h(
              "tr",
              { class: "line", "data-product": l.product_id, "data-qty": String(l.quantity) },
              h("td", { class: "name" }, l.name, h("small", {}, `${formatCents(l.price_cents)} c/u`)),
              h(
                "td",
                { class: "qty" },
                h("button", { type: "button", class: "step", "aria-label": "menos", tabindex: "-1",
                  onclick: () => basket.setQuantity(l.product_id, l.quantity - 1) }, "−"),
                h("input", {
                  class: "qty-in", inputmode: "numeric", value: String(l.quantity), "aria-label": `Cantidad de ${l.name}`,
                  onchange: (e) => {
                    const q = /^\d{1,7}$/.test(e.target.value.trim()) ? Number(e.target.value.trim()) : l.quantity;
                    basket.setQuantity(l.product_id, q);
                    input.focus();
                  },
                }),
                h("button", { type: "button", class: "step", "aria-label": "más", tabindex: "-1",
                  onclick: () => basket.setQuantity(l.product_id, l.quantity + 1) }, "+"),
              ),
              h("td", { class: "amount" }, formatCents(l.price_cents * l.quantity)),
              h("td", {}, h("button", { type: "button", class: "remove", "aria-label": `Quitar ${l.name}`, tabindex: "-1",
                onclick: () => basket.remove(l.product_id) }, "×")),
            ),
          )
        : h("tr", {}, h("td", { class: "empty", colspan: "4" }, "Escanee o busque un producto para empezar.")),
    );
    total.textContent = formatCents(basket.total());
    units.textContent = `${basket.count()} unidades`;
    payBtn.disabled = ls.length === 0;
  }

  function toPay() {
    if (basket.lines.length === 0) return say("La canasta está vacía.");
    app.go("pay");
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    const text = input.value.trim();
    // A scanner types a whole barcode in a few ms: wait for its Enter rather than search it.
    timer = setTimeout(() => search(text), BARCODE.test(text) ? 400 : DEBOUNCE_MS);
  });
  input.addEventListener("keydown", (e) => {
    const empty = input.value === "";
    if (e.key === "Enter") {
      e.preventDefault();
      enter();
    } else if (e.key === "ArrowDown" && found.length) {
      e.preventDefault();
      selected = (selected + 1) % found.length;
      showResults();
    } else if (e.key === "ArrowUp" && found.length) {
      e.preventDefault();
      selected = (selected + found.length - 1) % found.length;
      showResults();
    } else if (empty && (e.key === "+" || e.key === "-")) {
      e.preventDefault();
      const l = basket.lastLine();
      if (l) basket.setQuantity(l.product_id, l.quantity + (e.key === "+" ? 1 : -1));
    } else if (empty && e.key === "Delete") {
      e.preventDefault();
      const l = basket.lastLine();
      if (l) basket.remove(l.product_id);
    } else if (e.key === "Escape") {
      input.value = "";
      found = [];
      showResults();
    }
  });

  app.keyHandler = (e) => {
    const go = { F2: toPay, F4: () => app.go("returns"), F8: () => app.go("cash"), F9: () => app.go("close") }[e.key];
    if (!go) return false;
    go();
    return true;
  };

  basket.listeners.clear();
  basket.onChange(renderBasket);
  renderBasket();
  showResults();

  return h(
    "div",
    { class: "sell" },
    h(
      "section",
      { class: "finder" },
      input,
      results,
      msg,
      h("p", { class: "keys" },
        h("kbd", {}, "Enter"), " agregar · ", h("kbd", {}, "↑↓"), " elegir · ", h("kbd", {}, "+"), h("kbd", {}, "−"),
        " cantidad · ", h("kbd", {}, "Supr"), " quitar · ", h("kbd", {}, "F2"), " cobrar"),
    ),
    h(
      "section",
      { class: "basket" },
      h("h2", {}, "Canasta ", units),
      h("div", { class: "lines" }, h("table", { id: "basket" }, lines)),
      h("div", { class: "total" }, h("span", {}, "Total"), total),
      payBtn,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "ghost", id: "to-returns", onclick: () => app.go("returns") }, "Devolución (F4)"),
        h("button", { type: "button", class: "ghost", id: "to-cash", onclick: () => app.go("cash") }, "Ingreso/egreso (F8)"),
        h("button", { type: "button", class: "ghost", id: "to-close", onclick: () => app.go("close") }, "Cerrar turno (F9)"),
        h("button", { type: "button", class: "ghost", id: "clear", onclick: () => basket.clear() }, "Vaciar canasta"),
      ),
    ),
  );
}
