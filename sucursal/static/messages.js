// What the cashier reads for each error the branch can answer (docs/protocol.md, "Errors").
// Keyed by the error body's stable `code`, never by its English `message`.
import { api } from "./api.js";

const TEXT = {
  network: "La tienda no responde. Revise la red del mostrador; se reintentará.",
  invalid_request: "Datos no válidos. Revise lo ingresado.",
  invalid_credentials: "Usuario o PIN incorrecto.",
  too_many_attempts: "Demasiados intentos fallidos. Espere unos minutos e inténtelo de nuevo.",
  unauthorized: "La sesión expiró. Ingrese de nuevo; la canasta se conserva.",
  forbidden: "Su usuario no tiene permiso para esta operación. Llame a un supervisor.",
  unknown_product: "Producto no encontrado en esta tienda.",
  product_inactive: "Este producto ya no se vende.",
  payment_mismatch: "Los pagos no cubren el total, o la parte con tarjeta o billetera excede el total.",
  insufficient_stock: "No hay stock suficiente.",
  shift_already_open: "Esta caja ya tiene un turno abierto.",
  shift_not_open: "El turno no está abierto. Abra un turno para continuar.",
  shift_closed: "El turno ya fue cerrado con otro conteo.",
  unknown_sale: "No existe una venta con ese número en esta tienda.",
  return_exceeds_sale: "Se devuelve más de lo vendido (o un producto que no está en la venta).",
  return_window_expired: "La venta es demasiado antigua para aceptar devoluciones.",
  not_found: "No encontrado.",
  idempotency_key_reused: "Esta operación ya se registró con otros datos. Empiece de nuevo.",
  idempotency_key_in_flight: "La operación se está procesando; espere.",
  payload_too_large: "Demasiadas líneas en una sola operación.",
  storage_unavailable: "La tienda no puede guardar en este momento; se reintentará.",
  unavailable: "La tienda no está disponible en este momento; se reintentará.",
};

/** A Spanish sentence for an ApiError (or anything thrown). */
export function describe(err) {
  const code = err?.code ?? "";
  if (TEXT[code]) return TEXT[code];
  if (err?.status >= 500) return TEXT.unavailable;
  if (err?.status >= 400) return `La tienda rechazó la operación (${err.status}${code ? `, ${code}` : ""}).`;
  return "Error inesperado. Inténtelo de nuevo.";
}

/**
 * The insufficient-stock message names each product of the basket that is short and what is
 * left: the error body carries only a code and an English message (not to be parsed), so the
 * page reads the stock of each line again (`GET /inventory/{id}`).
 */
export async function shortages(lines) {
  const found = [];
  for (const l of lines) {
    try {
      const { body } = await api.product(l.product_id);
      if (body.stock < l.quantity) found.push({ name: l.name, stock: body.stock, quantity: l.quantity });
    } catch {
      // One unreadable line does not hide the others.
    }
  }
  if (found.length === 0) return TEXT.insufficient_stock;
  return found
    .map((s) => `Stock insuficiente: ${s.name} — quedan ${s.stock} (pidió ${s.quantity}).`)
    .join(" ");
}
