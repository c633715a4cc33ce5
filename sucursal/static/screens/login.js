// Log in with user and PIN (docs/protocol.md, "Login"). The token goes to sessionStorage.
import { api, session } from "../api.js";
import { basket } from "../basket.js";
import { h } from "../dom.js";
import { describe } from "../messages.js";

export function render(app, { expired = false } = {}) {
  const user = h("input", {
    id: "login-user", name: "user", autocomplete: "username", autocapitalize: "none",
    spellcheck: "false", required: true, value: app.user?.user_id ?? "", autofocus: !app.user,
  });
  const pin = h("input", {
    id: "login-pin", name: "pin", type: "password", inputmode: "numeric", autocomplete: "current-password",
    pattern: "[0-9]*", maxlength: "8", required: true, autofocus: !!app.user,
  });
  const msg = h("p", { class: "msg", id: "login-msg", role: "alert" });
  if (expired) {
    msg.textContent = "La sesión terminó. Ingrese de nuevo: la canasta se conserva.";
    msg.dataset.kind = "error";
  }
  const btn = h("button", { class: "primary big", type: "submit", id: "login-go" }, "Ingresar");
  const form = h(
    "form",
    { class: "card narrow", id: "login-form", autocomplete: "off" },
    h("h1", {}, "Caja"),
    h("p", { class: "muted" }, "Ingrese su usuario y PIN."),
    h("label", { for: "login-user" }, "Usuario"),
    user,
    h("label", { for: "login-pin" }, "PIN"),
    pin,
    btn,
    msg,
    basket.lines.length ? h("p", { class: "muted" }, `Canasta conservada: ${basket.count()} unidades.`) : null,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    btn.disabled = true;
    msg.textContent = "";
    try {
      const { body } = await api.login(user.value.trim(), pin.value);
      session.set(body.token);
      app.setUser({ user_id: body.user_id, name: body.name, role: body.role });
      if (app.shift && app.shift.opened_by !== body.user_id) app.setShift(null);
      await app.resume();
    } catch (err) {
      msg.dataset.kind = "error";
      msg.textContent = describe(err);
      pin.value = "";
      pin.focus();
      btn.disabled = false;
    }
  });
  return h("div", { class: "center" }, form);
}
