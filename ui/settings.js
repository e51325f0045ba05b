// The settings window: profiles (checked with OIDC discovery before saving), git hosts and
// the tray's own preferences. The tray app writes the config with comments kept.
import { invoke, el, errorBlock, closeOnEscape } from "./common.js";

const $ = (id) => document.getElementById(id);
const message = $("message");
const editor = $("profile-editor");
const form = $("profile-form");
let page = null;
let editing = null; // the original name of the profile being edited, null for a new one
let editingVia = null; // kept as it was: a Backstage behind oauth2-proxy signs in through it
let gitHosts = [];
closeOnEscape();

const say = (text) => message.replaceChildren(el("p", { class: "notice", role: "status" }, text));
const fail = (error) => message.replaceChildren(errorBlock(error));

function render(next) {
  page = next;
  $("config-path").textContent = page.config_path;
  $("profile-rows").replaceChildren(...(page.profiles.length ? page.profiles.map(profileRow)
    : [el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No profiles yet: add the identity provider you sign in to."))]));
  gitHosts = page.git_hosts.map((host) => ({ ...host }));
  renderGit();
  $("start-at-login").checked = page.start_at_login;
  $("notifications").checked = page.desktop.notifications;
  $("quit-stops-agent").checked = page.desktop.quit_stops_agent;
  $("backstage-url").value = page.desktop.backstage_url ?? "";
}

function profileRow(profile) {
  return el("tr", {},
    el("td", {}, el("strong", {}, profile.name)),
    el("td", { class: "mono" }, profile.kind !== "backstage" ? profile.issuer
      : profile.via_profile ? `Backstage ${profile.url} via ${profile.via_profile}` : `Backstage ${profile.url}`),
    el("td", { class: "mono" }, profile.client_id || "Backstage CLI client"),
    el("td", {}, el("div", { class: "row", style: "justify-content: flex-end" },
      el("button", { onclick: () => openEditor(profile), "aria-label": `Edit ${profile.name}` }, "Edit"),
      el("button", { class: "danger", onclick: () => removeProfile(profile.name), "aria-label": `Remove ${profile.name}` }, "Remove"))));
}

function openEditor(profile) {
  editing = profile?.name ?? null;
  editingVia = profile?.via_profile ?? null;
  $("editor-title").textContent = profile ? `Edit ${profile.name}` : "New profile";
  $("p-name").value = profile?.name ?? "";
  $("p-kind").value = profile?.kind ?? "oidc";
  $("p-url").value = profile?.url ?? "";
  $("p-issuer").value = profile?.issuer ?? "";
  $("p-client").value = profile?.client_id ?? "stagepass";
  $("p-scopes").value = (profile?.scopes ?? ["openid", "email", "profile", "offline_access"]).join(" ");
  $("p-audience").value = profile?.audience ?? "";
  $("p-flow").value = profile?.flow ?? "auto";
  $("p-groups").value = profile?.groups_claim ?? "";
  $("discovery").replaceChildren();
  showKind();
  editor.hidden = false;
  $("p-name").focus();
}

// Backstage derives the issuer from its URL and, with no client ID, uses its built-in CLI
// client; it refuses an audience.
function showKind() {
  const backstage = $("p-kind").value === "backstage";
  $("issuer-field").hidden = backstage;
  $("audience-field").hidden = backstage;
  $("url-field").hidden = !backstage;
  $("p-issuer").required = !backstage;
  $("p-url").required = backstage;
  $("p-client").required = !backstage;
  $("p-client").placeholder = backstage ? "Backstage's CLI client (default)" : "";
  $("client-help").textContent = backstage
    ? "Optional: your own client-ID document URL, so backstage-cli and stagepass do not sign each other out."
    : "The public client registered at the IdP.";
}

function formValue() {
  const optional = (id) => $(id).value.trim() || null;
  const backstage = $("p-kind").value === "backstage";
  return {
    name: $("p-name").value.trim(),
    kind: $("p-kind").value,
    url: backstage ? optional("p-url") : null,
    via_profile: backstage ? editingVia : null,
    issuer: backstage ? "" : $("p-issuer").value.trim(),
    client_id: $("p-client").value.trim(),
    scopes: $("p-scopes").value.split(/[\s,]+/).filter(Boolean),
    audience: backstage ? null : optional("p-audience"),
    flow: $("p-flow").value,
    groups_claim: optional("p-groups"),
  };
}

async function checkIssuer() {
  const target = $("discovery");
  target.replaceChildren(el("p", { class: "muted" }, "Checking the issuer…"));
  try {
    const found = await invoke("discover", { form: formValue() });
    const yes = (ok, what) => el("li", {}, ok ? "✓ " : "✗ ", what);
    target.replaceChildren(el("div", { class: "notice" },
      el("strong", {}, `Found ${found.issuer}`),
      el("ul", {}, yes(found.pkce_s256, "PKCE (S256) for browser sign-in"),
        yes(found.device_flow, "Device flow for headless machines"),
        yes(found.revocation, "Token revocation on sign-out"),
        yes(found.iss_parameter, "Issuer in the redirect (RFC 9207)"))));
    return true;
  } catch (error) {
    target.replaceChildren(errorBlock(error));
    return false;
  }
}

async function saveProfile(event) {
  event.preventDefault();
  if (!form.reportValidity() || !(await checkIssuer())) return;
  try {
    render(await invoke("save_profile", { original: editing, form: formValue() }));
    editor.hidden = true;
    say(`Saved ${formValue().name}.`);
  } catch (error) {
    fail(error);
  }
}

async function removeProfile(name) {
  if (!confirm(`Remove the profile ${name}? Signed-in sessions of it stay in the keychain until you sign out.`)) return;
  invoke("remove_profile", { name }).then((next) => { render(next); say(`Removed ${name}.`); }, fail);
}

function renderGit() {
  const profiles = page.profiles.map((profile) => profile.name);
  const rows = gitHosts.map((host, index) => {
    const bind = (key) => (event) => (gitHosts[index][key] = event.target.value || null);
    const select = (key, options, label) => {
      const node = el("select", { onchange: bind(key), "aria-label": label },
        ...options.map(([value, text]) => el("option", { value }, text)));
      node.value = host[key];
      return node;
    };
    return el("tr", {},
      el("td", {}, el("input", { type: "url", value: host.url, oninput: bind("url"), "aria-label": "Server URL" })),
      el("td", {}, select("profile", profiles.map((name) => [name, name]), "Profile")),
      el("td", {}, select("auth", [["basic", "Password"], ["bearer", "Bearer (git ≥ 2.46)"]], "Sent as")),
      el("td", {}, el("input", { type: "text", value: host.username ?? "", placeholder: "oauth2", oninput: bind("username"), "aria-label": "Username" })),
      el("td", {}, el("button", { class: "danger", "aria-label": `Remove ${host.url || "this host"}`,
        onclick: () => { gitHosts.splice(index, 1); renderGit(); } }, "Remove")));
  });
  $("git-rows").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No git hosts."))]));
}

$("add-git").addEventListener("click", () => {
  if (!page.profiles.length) return fail({ message: "Add a profile first." });
  gitHosts.push({ url: "https://", profile: page.profiles[0].name, auth: "basic", username: null });
  renderGit();
  $("git-rows").querySelector("tr:last-child input")?.focus();
});
$("save-git").addEventListener("click", () =>
  invoke("save_git_hosts", { hosts: gitHosts }).then((next) => { render(next); say("Saved the git hosts."); }, fail));
$("add-profile").addEventListener("click", () => openEditor(null));
$("cancel-edit").addEventListener("click", () => { editor.hidden = true; $("add-profile").focus(); });
$("check-issuer").addEventListener("click", checkIssuer);
$("p-kind").addEventListener("change", showKind);
form.addEventListener("submit", saveProfile);
$("general-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const preferences = {
    notifications: $("notifications").checked,
    quit_stops_agent: $("quit-stops-agent").checked,
    backstage_url: $("backstage-url").value.trim() || null,
    start_at_login: $("start-at-login").checked,
  };
  invoke("save_preferences", { preferences }).then((next) => { render(next); say("Saved."); }, fail);
});

invoke("settings").then(render, fail);
