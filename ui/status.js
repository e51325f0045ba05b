// The status window: per profile who is signed in, groups, token lifetimes and the Backstage
// identity; and the recent access from the audit log.
import { invoke, listen, params, el, timeOf, remaining, errorBlock, stateLabel, closeOnEscape } from "./common.js";

const panels = { profiles: document.getElementById("profiles"), access: document.getElementById("access") };
const tabs = { profiles: document.getElementById("tab-profiles"), access: document.getElementById("tab-access") };
const accessProfile = document.getElementById("access-profile");
closeOnEscape();

function select(view) {
  for (const name of Object.keys(panels)) {
    panels[name].hidden = name !== view;
    tabs[name].setAttribute("aria-selected", String(name === view));
    tabs[name].tabIndex = name === view ? 0 : -1;
  }
  if (view === "access") loadAccess();
}
for (const [name, tab] of Object.entries(tabs)) {
  tab.addEventListener("click", () => select(name));
  // Arrow keys move between tabs, as in native tab bars.
  tab.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const other = name === "profiles" ? "access" : "profiles";
    select(other);
    tabs[other].focus();
  });
}

async function renderProfiles(state) {
  const agent = document.getElementById("agent");
  agent.textContent = state.link.link === "connected"
    ? `agent ${state.link.agent_version} · pid ${state.link.agent_pid}`
    : state.link.link === "unreachable" ? `agent unreachable: ${state.link.message}` : "connecting…";
  if (state.profiles.length === 0) {
    panels.profiles.replaceChildren(el("div", { class: "card" },
      el("p", {}, "No profiles yet."),
      el("button", { class: "primary", onclick: () => invoke("open_window", { name: "settings" }) }, "Add a profile…")));
    return;
  }
  const cards = await Promise.all(state.profiles.map((profile) => profileCard(profile, state)));
  panels.profiles.replaceChildren(...cards);
  const known = [...accessProfile.options].map((option) => option.value);
  for (const profile of state.profiles) {
    if (!known.includes(profile.name)) accessProfile.append(el("option", { value: profile.name }, profile.name));
  }
}

async function profileCard(profile, state) {
  const failing = state.refresh_failing.includes(profile.name);
  const pillClass = failing ? "attention" : profile.state;
  const header = el("div", { class: "row spread" },
    el("h2", {}, profile.name, " ",
      el("span", { class: `pill ${pillClass}` }, failing ? "Refresh failing" : stateLabel[profile.state])),
    el("div", { class: "row" }, ...actions(profile)));
  const card = el("article", { class: "card", "aria-label": `Profile ${profile.name}` }, header,
    el("p", { class: "muted mono" }, profile.issuer));
  if (profile.reason) card.append(el("p", { class: "error" }, profile.reason));
  for (const note of profile.notes ?? []) card.append(el("p", { class: "notice" }, note));
  if (profile.state !== "signed_in") return card;
  try {
    card.append(facts(await invoke("profile_details", { profile: profile.name }), profile));
  } catch (error) {
    card.append(errorBlock(error));
  }
  return card;
}

function actions(profile) {
  const signIn = el("button", { class: "primary", onclick: () => invoke("open_sign_in", { profile: profile.name }) },
    "Sign in…");
  if (profile.state !== "signed_in") return [signIn];
  const copy = el("button", {}, "Copy access token");
  copy.addEventListener("click", () => invoke("copy_token", { profile: profile.name }).then(
    (done) => (copy.textContent = `Copied · expires ${done.expires_label ?? "—"}`),
    (error) => copy.replaceWith(errorBlock(error))));
  const signOut = el("button", { class: "danger" }, "Sign out");
  signOut.addEventListener("click", () => invoke("sign_out", { profile: profile.name }).catch(
    (error) => signOut.replaceWith(errorBlock(error))));
  return [copy, signOut];
}

function lifetime(token) {
  if (!token?.expires_at) return "—";
  return `expires ${timeOf(token.expires_at)} (${remaining(token.expires_at)})`;
}

function facts(details, profile) {
  const rows = [
    ["Signed in as", profile.user ?? details.email ?? profile.email ?? details.subject ?? "—"],
    ["Name", details.name],
    ["Groups", details.groups.length ? details.groups.map((g) => el("span", { class: "chip" }, g)) : "none in the token"],
    ["Access token", lifetime(details.access_token)],
    ["Last refresh", details.access_token?.issued_at ? timeOf(details.access_token.issued_at) : "—"],
    ["ID token", lifetime(details.id_token)],
    ["Refresh token", details.refresh_token
      ? (details.refresh_token.expires_at ? lifetime(details.refresh_token) : "held in the keychain")
      : "none: sign in again when the access token expires"],
    ["Audience", details.audience.join(", ")],
    ["Backstage user", details.backstage_user],
    ["Ownership", details.ownership.map((entity) => el("span", { class: "chip" }, entity))],
  ];
  return el("dl", { class: "facts" }, ...rows
    .filter(([, value]) => value && (!Array.isArray(value) || value.length))
    .flatMap(([label, value]) => [el("dt", {}, label), el("dd", {}, value)]));
}

async function loadAccess() {
  const rows = document.getElementById("access-rows");
  const entries = await invoke("recent_access", { profile: accessProfile.value || null });
  if (entries.length === 0) {
    rows.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "Nothing recorded yet.")));
    return;
  }
  rows.replaceChildren(...entries.map((entry) => el("tr", {},
    el("td", { class: "nowrap", title: entry.time }, timeOf(Date.parse(entry.time) / 1000)),
    el("td", { title: entry.program ?? "" },
      entry.delegation ? el("span", { class: "chip agent", title: "a delegation: an AI agent or a script" }, `agent ${entry.delegation}`) : "",
      (entry.program ?? "").split("/").pop() || entry.consumer,
      el("span", { class: "muted" }, ` · ${entry.consumer}`)),
    el("td", { class: "mono" }, entry.pid ?? "—"),
    el("td", {}, entry.profile),
    el("td", { class: "mono" }, entry.audience ?? "—"),
    el("td", {}, entry.event.replaceAll("_", " "),
      entry.outcome === "ok" ? "" : el("div", { class: "muted" }, entry.outcome)))));
}
accessProfile.addEventListener("change", loadAccess);

listen("agent-state", renderProfiles);
invoke("agent_state").then(renderProfiles);
select(params.get("view") === "access" ? "access" : "profiles");
