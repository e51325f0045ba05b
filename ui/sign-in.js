// The sign-in window: mirrors the sign-in the agent runs for one profile (browser tab or
// device code), and lets the user reopen the page, copy the code or cancel.
import { invoke, listen, params, el, errorBlock, closeWindow, closeOnEscape } from "./common.js";

const profile = params.get("profile");
const content = document.getElementById("content");
let countdown = null;

document.getElementById("title").textContent = `Sign in to ${profile}`;
closeOnEscape();

const start = (flow = null) => invoke("start_sign_in", { profile, flow }).then(render, showError);
const cancel = () => invoke("cancel_sign_in", { profile }).then((view) => view && render(view));
const showError = (error) => content.replaceChildren(errorBlock(error));

function buttons(...items) {
  return el("div", { class: "row", style: "justify-content: center" }, ...items);
}

function render(view) {
  clearInterval(countdown);
  const phase = view.phase;
  const cancelButton = el("button", { onclick: cancel }, "Cancel");
  switch (phase.phase) {
    case "starting":
      content.replaceChildren(el("div", { class: "spinner", role: "img", "aria-label": "Working" }),
        el("p", {}, "Contacting the identity provider…"), buttons(cancelButton));
      break;
    case "browser":
      content.replaceChildren(
        el("div", { class: "big-icon", "aria-hidden": "true" }, "🌐"),
        el("p", {}, "A browser tab was opened to sign in. Finish there; this window closes by itself."),
        el("p", { class: "muted" }, waited(view)),
        buttons(
          el("button", { class: "primary", onclick: () => invoke("reopen_browser", { profile }).catch(showError) },
            "Open the page again"),
          el("button", { onclick: () => cancel().then(() => start("device")) }, "Use a code instead"),
          cancelButton));
      break;
    case "device":
      renderDevice(phase, cancelButton);
      break;
    case "joined":
      content.replaceChildren(el("div", { class: "spinner" }),
        el("p", {}, "Another program started this sign-in; finish it where it opened."), buttons(cancelButton));
      break;
    case "signed_in":
      content.replaceChildren(
        el("div", { class: "big-icon", style: "color: var(--ok)", "aria-hidden": "true" }, "✓"),
        el("p", { class: "notice", role: "status" }, `Signed in${phase.who ? ` as ${phase.who}` : ""}.`));
      break;
    case "failed":
      content.replaceChildren(errorBlock(phase.error),
        buttons(el("button", { class: "primary", onclick: () => start() }, "Try again"),
          el("button", { onclick: closeWindow }, "Close")));
      break;
    case "cancelled":
      content.replaceChildren(el("p", {}, "Sign-in cancelled."),
        buttons(el("button", { class: "primary", onclick: () => start() }, "Sign in again"),
          el("button", { onclick: closeWindow }, "Close")));
      break;
  }
  content.querySelector("button.primary, button")?.focus();
}

function waited(view) {
  return view.elapsed_secs ? `Waiting for ${view.elapsed_secs} s…` : "Waiting…";
}

function renderDevice(phase, cancelButton) {
  const qr = el("div", { class: "qr", role: "img", "aria-label": "QR code of the sign-in page" });
  // The SVG comes from our own QR encoder (Rust `qrcode`), not from the network.
  qr.innerHTML = phase.qr_svg;
  const left = el("p", { class: "muted", id: "countdown" });
  const copy = el("button", { class: "primary", "aria-label": `Copy the code ${phase.user_code}` }, "Copy code");
  copy.addEventListener("click", () =>
    invoke("copy_user_code", { profile }).then(() => (copy.textContent = "Copied ✓"), showError));
  content.replaceChildren(
    el("p", {}, "On this or another device, open ",
      el("strong", { class: "mono" }, phase.verification_uri), " and enter:"),
    el("div", { class: "user-code", "aria-label": "Your code" }, phase.user_code),
    buttons(copy, cancelButton),
    qr,
    el("p", { class: "muted" }, "Or scan the code with a phone: it opens the page with the code filled in."),
    left);
  const tick = () => {
    const seconds = Math.max(0, Math.round(phase.expires_at - Date.now() / 1000));
    left.textContent = seconds > 0
      ? `The code expires in ${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}.`
      : "The code has expired.";
  };
  tick();
  countdown = setInterval(tick, 1000);
}

invoke("agent_state").then((state) => {
  const issuer = state.profiles.find((p) => p.name === profile)?.issuer;
  if (issuer) document.getElementById("issuer").textContent = issuer;
});
listen("sign-in", (view) => view.profile === profile && render(view));
invoke("sign_in_view", { profile })
  .then((view) => (view && !["failed", "cancelled"].includes(view.phase.phase) ? render(view) : start()))
  .catch(showError);
