// Shared by the windows: talking to the tray app (Tauri's global API), building DOM safely
// (text only, never HTML from data), and showing times the way the tray menu does.

const tauri = window.__TAURI__;

export const invoke = (command, args = {}) => tauri.core.invoke(command, args);
export const listen = (event, handler) => tauri.event.listen(event, (e) => handler(e.payload));
export const params = new URLSearchParams(location.search);

/** el("button", {class: "primary", onclick}, "Sign in") */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return node;
}

export function timeOf(unix) {
  if (!unix) return "—";
  const at = new Date(unix * 1000);
  const clock = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return at.toDateString() === new Date().toDateString()
    ? clock
    : `${at.toLocaleDateString([], { weekday: "short", month: "short", day: "numeric" })} ${clock}`;
}

export function remaining(unix) {
  const seconds = Math.round(unix - Date.now() / 1000);
  if (seconds <= 0) return "expired";
  if (seconds < 90) return `in ${seconds} s`;
  if (seconds < 90 * 60) return `in ${Math.round(seconds / 60)} min`;
  return `in ${Math.round(seconds / 3600)} h`;
}

/** An error from a command ({message, hint}) as a block the user can read. */
export function errorBlock(error) {
  const message = error?.message ?? String(error);
  return el("div", { class: "error", role: "alert" },
    el("strong", {}, message),
    error?.hint ? el("div", { class: "muted" }, error.hint) : null);
}

export const stateLabel = {
  signed_in: "Signed in",
  signed_out: "Signed out",
  needs_sign_in: "Needs sign-in",
};

/** Closes on Escape, as native dialogs do. */
export function closeOnEscape() {
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") tauri.window.getCurrentWindow().close();
  });
}

export function closeWindow() {
  return tauri.window.getCurrentWindow().close();
}
