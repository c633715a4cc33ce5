// Money on the till: integer cents, never floating point (docs/protocol.md, "Words").
// "12.50" is parsed with string arithmetic, so 0.1 + 0.2 can never creep into a total.

const MAX_CENTS = 1_000_000_000_000_000; // 10^15, the API's upper bound for an amount

/** Parses what a cashier types ("12", "12.5", "12,50", "S/ 12.50") into cents, or null. */
export function parseCents(text) {
  const s = String(text ?? "").trim().replace(/^S\/\s*/i, "").replace(/\s+/g, "");
  const m = /^(\d{1,13})(?:[.,](\d{0,2}))?$/.exec(s);
  if (!m) return null;
  const frac = (m[2] ?? "").padEnd(2, "0");
  const cents = Number(m[1]) * 100 + Number(frac);
  return Number.isSafeInteger(cents) && cents <= MAX_CENTS ? cents : null;
}

/** 1250 → "S/ 12.50"; -300 → "-S/ 3.00". Thousands grouped with commas, as in Peru. */
export function formatCents(cents) {
  const n = Math.trunc(Number(cents) || 0);
  const sign = n < 0 ? "-" : "";
  const abs = Math.abs(n);
  const soles = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const rest = String(abs % 100).padStart(2, "0");
  return `${sign}S/ ${soles}.${rest}`;
}

/** The plain amount for an input field: 1250 → "12.50". */
export function centsToInput(cents) {
  const abs = Math.abs(Math.trunc(cents));
  return `${cents < 0 ? "-" : ""}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}
