// The basket: lines of {product_id, name, price_cents, quantity, stock}, its own
// Idempotency-Key, and the sale being sent. Kept in sessionStorage so a lost session (401)
// or a reload never loses what the customer brought to the counter.
import { newKey } from "./api.js";

const KEY = "colmena.basket";
const MAX_QTY = 1_000_000;

function load() {
  try {
    const b = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
    if (b && Array.isArray(b.lines) && typeof b.key === "string") return b;
  } catch {
    // A corrupt entry starts an empty basket.
  }
  return { lines: [], key: newKey(), pending: null };
}

export const basket = {
  state: load(),
  listeners: new Set(),

  save() {
    sessionStorage.setItem(KEY, JSON.stringify(this.state));
    for (const f of this.listeners) f(this.state);
  },
  onChange(f) {
    this.listeners.add(f);
  },
  get lines() {
    return this.state.lines;
  },
  /** A sale whose answer has not come yet: the basket is locked until it does. */
  get pending() {
    return this.state.pending;
  },
  get locked() {
    return this.state.pending !== null;
  },
  total() {
    return this.state.lines.reduce((t, l) => t + l.price_cents * l.quantity, 0);
  },
  count() {
    return this.state.lines.reduce((t, l) => t + l.quantity, 0);
  },
  /** Adds one unit of a product (a new line, or one more on its line); returns the line. */
  add(p, qty = 1) {
    if (this.locked) return null;
    let line = this.state.lines.find((l) => l.product_id === p.product_id);
    if (line) line.quantity = Math.min(MAX_QTY, line.quantity + qty);
    else {
      line = { product_id: p.product_id, name: p.name, price_cents: p.price_cents, quantity: qty, stock: p.stock };
      this.state.lines.push(line);
    }
    this.state.last = p.product_id;
    this.save();
    return line;
  },
  setQuantity(productId, qty) {
    if (this.locked) return;
    const line = this.state.lines.find((l) => l.product_id === productId);
    if (!line) return;
    if (qty <= 0) this.remove(productId);
    else {
      line.quantity = Math.min(MAX_QTY, Math.trunc(qty));
      this.state.last = productId;
      this.save();
    }
  },
  remove(productId) {
    if (this.locked) return;
    this.state.lines = this.state.lines.filter((l) => l.product_id !== productId);
    this.save();
  },
  /** The line last touched (for the keyboard's + and -). */
  lastLine() {
    const ls = this.state.lines;
    return ls.find((l) => l.product_id === this.state.last) ?? ls[ls.length - 1] ?? null;
  },
  /** Freezes the request about to be sent: the same body and key on every retry. */
  freeze(body) {
    this.state.pending = { key: this.state.key, body };
    this.save();
  },
  /** The branch refused the sale (nothing was sold): unlock, and use a fresh key next time. */
  refused() {
    this.state.pending = null;
    this.state.key = newKey();
    this.save();
  },
  /** The sale is recorded: a new, empty basket with its own key. */
  sold() {
    this.state = { lines: [], key: newKey(), pending: null };
    this.save();
  },
  clear() {
    if (this.locked) return;
    this.state.lines = [];
    this.save();
  },
};
