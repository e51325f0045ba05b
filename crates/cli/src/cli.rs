use clap::{Args, Parser, Subcommand};

use crate::exit::EXIT_CODES_HELP;

/// Sign in once to your organisation's OpenID Connect provider; git, curl, kubectl, docker
/// and scripts then get valid, short-lived tokens from the stagepass agent.
#[derive(Debug, Parser)]
#[command(
    name = "stagepass",
    version,
    after_long_help = EXIT_CODES_HELP,
    after_help = "Run `stagepass help <command>` for details, `stagepass --help` for exit codes and files."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in to a profile (browser with PKCE, or device code where no browser can open).
    #[command(after_long_help = "\
Examples:
  stagepass login                 sign in to the only profile, browser or device code as fits
  stagepass login corp --device   sign in with a code on another device (SSH, Codespaces)
  stagepass login --no-open       print the sign-in URL instead of opening a browser

The browser is opened with $BROWSER when set, otherwise the platform opener. Over SSH, in a
Codespace or without a display, `auto` (the default flow) uses the device code.")]
    Login(LoginArgs),
    /// Sign out: revoke the refresh token at the IdP, delete it from the keychain.
    Logout(ProfileArg),
    /// Show each profile's sign-in state and whether the agent runs.
    Status(StatusArgs),
    /// Print a valid access token (refreshed first when about to expire).
    #[command(after_long_help = "\
Examples:
  curl -H \"Authorization: Bearer $(stagepass token corp)\" https://backstage.example.com/api/catalog/entities
  stagepass token --id-token      the OIDC id_token instead of the access token
  stagepass token --json          {\"token\",\"expires_at\",\"token_type\",\"profile\"}
  stagepass token --header | curl -H @- https://backstage.example.com/api/catalog/entities")]
    Token(TokenArgs),
    /// Show the claims of the id_token and the access token (groups, email, aud, exp).
    Claims(ProfileJsonArgs),
    /// Show who got which token and when: hand-outs, sign-ins, refreshes, sign-outs.
    #[command(after_long_help = "\
Each line: time, event, consumer (cli, git, docker, kube, agent...), the caller's pid and
executable, profile, token kind, a short fingerprint of the token (never the token), outcome.

Examples:
  stagepass audit --since 1h
  stagepass audit --follow --json | jq .")]
    Audit(AuditArgs),
    /// Run, inspect or stop the agent (clients start one in the background by themselves).
    #[command(after_long_help = "\
The agent is the only process that holds tokens. Every other command starts it when none runs.
For a headless machine, a systemd user unit ships in contrib/systemd/stagepass-agent.service.")]
    Agent(AgentArgs),
    /// Run a command with a token in its environment (never in its argv).
    #[command(after_long_help = "\
Examples:
  stagepass exec -- terraform plan                   $STAGEPASS_TOKEN holds the access token
  stagepass exec corp --env-var VAULT_TOKEN -- vault login -method=oidc
  stagepass exec --id-token -- ./deploy.sh
  stagepass exec -- sh -c 'printf \"Proxy-Authorization: Bearer %s\\n\" \"$STAGEPASS_PROXY_KEY\" |
      curl -H @- \"$STAGEPASS_PROXY/api/catalog/entities\"'

With proxy routes configured, $STAGEPASS_PROXY is the local URL of a route (--route, else the
first) and $STAGEPASS_PROXY_KEY the proxy key; printf is a shell builtin, so the key stays out
of every argv.

The command's exit code becomes stagepass's. The token is fresh for at least --min-valid
seconds when the command starts; a long-running command should ask again with `stagepass token`.")]
    Exec(ExecArgs),
    /// Print a Kubernetes ExecCredential: use it as a kubeconfig user's exec command.
    #[command(after_long_help = "\
Set it up with `stagepass setup kube [PROFILE]`, which writes a kubeconfig user such as:

  users:
  - name: stagepass-corp
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: stagepass
        args: [kube-credential, corp]
        interactiveMode: IfAvailable

The token is the id_token (what API servers with OIDC authentication expect) unless
--access-token is given. expirationTimestamp is set 30 s before the token really expires, so
kubectl asks again in time. When kubectl says it cannot interact (KUBERNETES_EXEC_INFO), a
profile that needs a sign-in fails at once instead of opening a browser.")]
    KubeCredential(KubeCredentialArgs),
    /// Configure git, docker or kubectl to get their credentials from stagepass.
    #[command(after_long_help = "\
Examples:
  stagepass setup git            credential.<url>.helper for every [[git]] entry of the config
  stagepass setup docker         credHelpers in ~/.docker/config.json for every [[docker]] entry
  stagepass setup kube corp      a kubeconfig user `stagepass-corp` running `stagepass kube-credential corp`
  stagepass setup --undo git     remove what `setup git` wrote

Each run shows what it changed and changes nothing that is already right.")]
    Setup(SetupArgs),
    /// git's credential helper protocol (what `git-credential-stagepass` runs).
    #[command(hide = true)]
    GitCredential(HelperArgs),
    /// docker's credential helper protocol (what `docker-credential-stagepass` runs).
    #[command(hide = true)]
    DockerCredential(HelperArgs),
    /// Check the config, the IdP, the tokens, the keychain, the agent and the helpers: each
    /// misconfiguration is named, with what was seen and how to fix it.
    #[command(after_long_help = "\
Checks, in order (ids are stable, for scripts):
  config.file config.profile
  idp.discovery idp.issuer idp.pkce idp.grants idp.device_flow idp.revocation idp.scopes
  idp.offline_access idp.redirect_uri idp.client idp.authorize idp.clock_skew
  backstage.client_id
  agent token.session token.audience token.scopes token.groups token.claims token.lifetimes
  keychain proxy.port helper.git helper.docker helper.kubectl

Each is ok, info, skip (an earlier check failed), warn or fail. The exit code is 0 unless a
check fails (10). The IdP is probed without signing anyone in: an authorization request that
stops at the login page and a code exchange with a made-up code. The keychain check writes,
reads and deletes a throwaway entry; real logins are never touched.

--json prints one JSON object per line, one line per check:
  {\"check\",\"profile\",\"status\",\"summary\",\"evidence\":[...],\"fix\"}

Examples:
  stagepass doctor                 every profile
  stagepass doctor corp --json | jq 'select(.status == \"fail\")'")]
    Doctor(DoctorArgs),
    /// Write a commented profile for your IdP from a preset (keycloak, okta, entra, auth0...).
    #[command(subcommand)]
    Config(ConfigAction),
    /// Backstage profiles (kind = "backstage"): who you are there.
    #[command(subcommand)]
    Backstage(BackstageAction),
    /// Open a proxy route in the browser, signed in (a one-time launch URL).
    #[command(after_long_help = "\
The local proxy (the config's [proxy] and [[route]] tables) forwards to each route's upstream
with your identity. A browser gets in through a one-time launch URL, good for a minute, that
sets an HttpOnly, SameSite=Strict session cookie for the route's origin.

Examples:
  stagepass open                  the only route
  stagepass open backstage
  stagepass open backstage --path /catalog
  stagepass open backstage --print   print the launch URL instead of opening it")]
    Open(OpenArgs),
    /// Let a Codespace or an SSH host get tokens and reach the proxy through a port forward:
    /// scoped, expiring, revocable remote keys.
    #[command(subcommand)]
    Remote(RemoteAction),
    /// Give a script, a CI job or an AI agent a scoped key instead of your token:
    /// routes, HTTP methods and paths, expiring and revocable.
    #[command(subcommand)]
    Delegate(DelegateAction),
}

#[derive(Debug, Subcommand)]
pub enum DelegateAction {
    /// Create a delegation; its key is printed once, to stdout.
    #[command(after_long_help = "\
The key is sent to the local proxy as `Proxy-Authorization: Bearer KEY`, like the proxy key.
The proxy forwards only what the scope allows, as you; anything else gets a 403 whose JSON
body names what was missing (route, method or path) and never reaches the upstream. A
delegation gets no raw token (proxy access only).

Examples:
  stagepass delegate create ci-bot --routes jenkins --methods GET,POST --paths /job/app/ --ttl 2h
  stagepass delegate create reader --routes backstage --read-only --json
  stagepass delegate create two --routes api,backstage --paths api:/v1/ backstage:/api/catalog/
  stagepass delegate create helper --routes backstage --read-only --ask   # writes ask you first")]
    Create(Box<DelegateCreateArgs>),
    /// List delegations, remote keys included: scope, expiry and last use (never a key).
    List(JsonArg),
    /// Revoke a delegation (or a remote key): it stops working at once.
    Revoke {
        /// The delegation's name, as `delegate list` shows it.
        name: String,
    },
    /// List the requests of `--ask` delegations that wait for your answer.
    Pending(JsonArg),
    /// Let a waiting request through (once, or with --always from now on).
    #[command(after_long_help = "\
--always widens the delegation's scope by the request's route, method and path (as a prefix:
the path and what is under it), so the next such request goes through without asking; it
widens nothing else. `stagepass delegate list` shows what was approved.")]
    Approve {
        /// The request's id, as `delegate pending` shows it.
        id: String,
        /// Allow this route, method and path prefix for the delegation from now on.
        #[arg(long)]
        always: bool,
    },
    /// Refuse a waiting request: its caller gets a 403 and the upstream never sees it.
    Deny {
        /// The request's id, as `delegate pending` shows it.
        id: String,
    },
    /// Print the MCP client configuration (JSON) for the MCP endpoints of a delegation's
    /// routes, through the local proxy.
    #[command(
        name = "mcp-config",
        after_long_help = "\
The configuration points the MCP client at the proxy's local URL of each MCP endpoint (a
route's `mcp = [\"/api/mcp-actions/v1\"]`) with the delegation's key as
`Authorization: Bearer`. It never holds the key (the agent keeps only its SHA-256, and MCP
configurations are often checked in): Claude Code reads it from an environment variable
(`${STAGEPASS_PROXY_KEY}`, which `stagepass exec --agent` sets), VS Code asks for it once and
keeps it in its secret storage. A read-only delegation lists the tools and calls those the
upstream marks read-only; any other call gets a 403 and never reaches the upstream.

Examples:
  stagepass delegate create claude --routes backstage --read-only --ttl 8h
  stagepass delegate mcp-config claude > .mcp.json
  stagepass exec --agent claude --read-only --routes backstage -- claude
  stagepass delegate mcp-config claude --client vscode > .vscode/mcp.json"
    )]
    McpConfig(McpConfigArgs),
}

#[derive(Debug, Args)]
pub struct McpConfigArgs {
    /// The delegation's name, as `delegate list` shows it.
    pub name: String,
    /// The client whose file format to print: `claude` (Claude Code's `.mcp.json`,
    /// `mcpServers`; Cursor and others read it too) or `vscode` (`.vscode/mcp.json`,
    /// `servers` and `inputs`).
    #[arg(long, value_enum, default_value = "claude")]
    pub client: McpClient,
    /// Only this route's MCP endpoints.
    #[arg(long, value_name = "ROUTE")]
    pub route: Option<String>,
    /// The environment variable Claude Code reads the key from.
    #[arg(long, value_name = "VAR", default_value = "STAGEPASS_PROXY_KEY")]
    pub key_env: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum McpClient {
    Claude,
    Vscode,
}

/// `--ask`: ask the developer about requests outside the scope instead of refusing them.
#[derive(Debug, Args, Clone, Default)]
pub struct AskArgs {
    /// A request outside the scope waits for your answer (a desktop notification with
    /// Allow once / Allow for this delegation / Deny, or `stagepass delegate approve|deny`)
    /// instead of a 403 at once; refused when nobody answers in time.
    #[arg(long)]
    pub ask: bool,
    /// With --ask: how long a request waits for an answer (default 60s, at most 10m).
    #[arg(long, value_name = "SPAN", requires = "ask")]
    pub ask_timeout: Option<String>,
}

/// What a delegation may do; shared by `delegate create` and `exec --agent`.
#[derive(Debug, Args, Clone, Default)]
pub struct DelegateScopeArgs {
    /// Proxy routes the delegation may use (comma-separated).
    #[arg(long, value_name = "R1,R2", value_delimiter = ',')]
    pub routes: Vec<String>,
    /// The routes of these profiles too (comma-separated).
    #[arg(long, value_name = "P1,P2", value_delimiter = ',')]
    pub profiles: Vec<String>,
    /// HTTP methods it may send (comma-separated; default: all).
    #[arg(
        long,
        value_name = "M1,M2",
        value_delimiter = ',',
        conflicts_with = "read_only"
    )]
    pub methods: Vec<String>,
    /// Only GET, HEAD and OPTIONS.
    #[arg(long)]
    pub read_only: bool,
    /// Path prefixes it may reach under its routes: /prefix/ for every route,
    /// ROUTE:/prefix/ for one (default: every path).
    #[arg(long, value_name = "PREFIX", num_args = 1..)]
    pub paths: Vec<String>,
    #[command(flatten)]
    pub ask: AskArgs,
    /// Let it get raw access tokens carrying only these OAuth scopes (a subset of the
    /// profile's), narrowed by token exchange or a fewer-scopes refresh (comma-separated).
    #[arg(long, value_name = "S1,S2", value_delimiter = ',')]
    pub token_scopes: Vec<String>,
    /// The audience those tokens are narrowed to (token exchange only; a client ID at Keycloak).
    #[arg(long, value_name = "AUDIENCE", requires = "token_scopes")]
    pub token_audience: Option<String>,
}

#[derive(Debug, Args)]
pub struct DelegateCreateArgs {
    /// A name for the delegation: it is what the audit shows.
    pub name: String,
    #[command(flatten)]
    pub scope: DelegateScopeArgs,
    /// How long it works: 30m, 8h, 2d (at most 7d).
    #[arg(long, value_name = "SPAN", default_value = "8h")]
    pub ttl: String,
    /// Print {name, key, routes, methods, paths, expires_at, proxy_url, token_method, tokens}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RemoteAction {
    /// Mint a remote key (shown once; the agent keeps only its SHA-256).
    #[command(after_long_help = "\
The key reaches the agent only through a port forward to the local proxy's port, where it gets
short-lived access tokens of the profiles in its scope (never a refresh token, never an
id_token) and passes the proxy for the routes in its scope. --routes brings each route's
profile along; with neither --routes nor --profiles, the default profile and its routes.

Examples:
  stagepass remote grant --name my-codespace --routes backstage
  stagepass remote grant --ttl 30m --profiles corp --json")]
    Grant(RemoteGrantArgs),
    /// List remote keys: scope, expiry and last use (never the key).
    List(JsonArg),
    /// Revoke a remote key: it stops working at once.
    Revoke {
        /// The key's name, as `remote list` shows it.
        name: String,
    },
    /// Show (or --run) the reverse port forward for an SSH host or a Codespace, and the
    /// environment to set there.
    #[command(after_long_help = "\
Examples:
  stagepass remote ssh devbox.example.com --grant
  stagepass remote ssh --codespace my-codespace-abc123 --grant --routes backstage --run

The remote side then runs the same stagepass binary: `stagepass token`, `git-credential-stagepass`
and `stagepass exec` work there through the forward. Keys never go in a command's argv: they are
printed only in the environment lines.")]
    Ssh(RemoteSshArgs),
}

#[derive(Debug, Args)]
pub struct RemoteScopeArgs {
    /// How long the key works: 30m, 8h, 2d (at most 7d).
    #[arg(long, value_name = "SPAN", default_value = "8h")]
    pub ttl: String,
    /// Proxy routes the key may use (comma-separated); their profiles come along.
    #[arg(long, value_name = "R1,R2", value_delimiter = ',')]
    pub routes: Vec<String>,
    /// Profiles whose access tokens the key may get (comma-separated).
    #[arg(long, value_name = "P1,P2", value_delimiter = ',')]
    pub profiles: Vec<String>,
    /// The key's name (default: remote-XXXXXX).
    #[arg(long)]
    pub name: Option<String>,
    /// The port the remote side's forward listens on, when it is not the proxy's own.
    #[arg(long, value_name = "PORT")]
    pub remote_port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct RemoteGrantArgs {
    #[command(flatten)]
    pub scope: RemoteScopeArgs,
    /// Print {name, key, routes, profiles, expires_at, proxy_url}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoteSshArgs {
    /// The SSH destination ([user@]host, or a Host of ~/.ssh/config).
    #[arg(required_unless_present = "codespace", conflicts_with = "codespace")]
    pub host: Option<String>,
    /// A GitHub Codespace, through `gh codespace ssh`.
    #[arg(long, value_name = "NAME")]
    pub codespace: Option<String>,
    /// Mint a key for it now (printed only in the environment lines).
    #[arg(long)]
    pub grant: bool,
    /// Run the forward (until it ends) instead of printing the command.
    #[arg(long)]
    pub run: bool,
    #[command(flatten)]
    pub scope: RemoteScopeArgs,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The route's name; may be left out when the config has exactly one.
    pub route: Option<String>,
    /// Print the launch URL instead of opening a browser (it works once, for a minute).
    #[arg(long)]
    pub print: bool,
    /// Land on this path under the route (e.g. /catalog) instead of its root.
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BackstageAction {
    /// Show your user entity ref, display name and ownership refs (your groups) as Backstage
    /// sees them, and your User entity in the catalog.
    #[command(after_long_help = "\
The agent asks Backstage's /api/auth/v1/userinfo and the catalog with the token it holds; the
token itself is not printed. This answers \"which groups does Backstage think I am in?\".

Examples:
  stagepass backstage whoami
  stagepass backstage whoami backstage --json | jq .ownership_entity_refs")]
    Whoami(ProfileJsonArgs),
}

#[derive(Debug, Args)]
pub struct HelperArgs {
    /// get, store, erase (and list for docker).
    pub action: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub profile: ProfileArg,
    /// The environment variable that carries the token.
    #[arg(long, value_name = "NAME", default_value = "STAGEPASS_TOKEN")]
    pub env_var: String,
    /// The proxy route whose URL goes into $STAGEPASS_PROXY (default: the first route).
    #[arg(long, value_name = "ROUTE")]
    pub route: Option<String>,
    /// Pass the OIDC id_token instead of the access token.
    #[arg(long, conflicts_with = "agent")]
    pub id_token: bool,
    /// Run an AI agent or script with a delegation named NAME instead of your token: it gets
    /// $STAGEPASS_PROXY and a scoped key in $STAGEPASS_PROXY_KEY, no token; the delegation
    /// is revoked when the command exits.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
    /// With --agent: what the delegation may do.
    #[command(flatten)]
    pub scope: DelegateScopeArgs,
    /// With --agent: the delegation's life at most, should the command outlive it (at most 1d).
    #[arg(long, value_name = "SPAN", requires = "agent")]
    pub ttl: Option<String>,
    /// Refresh first when the token expires within this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub min_valid: u64,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct KubeCredentialArgs {
    #[command(flatten)]
    pub profile: ProfileArg,
    /// Send the access token rather than the id_token.
    #[arg(long)]
    pub access_token: bool,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Remove what setup wrote instead.
    #[arg(long, global = true)]
    pub undo: bool,
    #[command(subcommand)]
    pub tool: SetupTool,
}

#[derive(Debug, Subcommand)]
pub enum SetupTool {
    /// git: a credential helper for each [[git]] entry (git config --global).
    Git,
    /// docker: credHelpers for each [[docker]] entry ($DOCKER_CONFIG/config.json).
    Docker,
    /// kubectl: a kubeconfig user with an exec entry (through `kubectl config`).
    Kube(ProfileArg),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Profile to check; all of them when left out.
    pub profile: Option<String>,
    /// Print one JSON object per check, one per line.
    #[arg(long)]
    pub json: bool,
    /// The local port the proxy listens on, checked to be free (or the agent's); default: the
    /// config's [proxy] port, else 7466.
    #[arg(long, value_name = "PORT")]
    pub proxy_port: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Add a profile made from a provider preset to the config file (created when missing).
    #[command(after_long_help = "\
The preset knows the IdP's issuer URL shape, recommended scopes, groups claim, device grant and
quirks; give only what it cannot know. The IdP-side setup of each preset is described step by
step in docs/providers/PRESET.md.

  keycloak  --domain HOST --realm REALM
  okta      --domain DOMAIN (or --issuer for a custom authorization server)
  entra     --tenant TENANT-ID [--audience api://APP-ID]
  auth0     --domain DOMAIN [--audience API-IDENTIFIER]
  gitlab    [--domain HOST] (gitlab.com by default)
  generic   --issuer URL
  google, github, space: explain why stagepass cannot sign in to them yet, and what to use.

Existing content is never lost: the profile is appended; an existing profile of the same name
is refused unless --force, and then kept, commented out. No secret is ever written.

Examples:
  stagepass config init --preset keycloak --domain sso.example.com --realm eng --client-id stagepass
  stagepass config init --preset entra --tenant TENANT-ID --client-id APP-ID --print")]
    Init(ConfigInitArgs),
    /// Keep a confidential client's secret in the keychain (read from standard input, never argv).
    #[command(after_long_help = "\
Some IdPs hand out confidential clients only: Google's desktop clients, and many Keycloak, Okta
and Entra setups. Their secret goes to the keychain beside the profile's login; the config only
says `client_auth = \"secret\"` in the profile. stagepass sends the secret the way the IdP's
discovery document allows (client_secret_basic, else client_secret_post) on the code exchange,
on every refresh and on revocation. A sign-out keeps it; --delete removes it.

The secret is read from standard input, or asked for without echo at a terminal: never from
the command line, where other local users could read it.

Examples:
  stagepass config set-secret corp                               asks for it
  pass show idp/stagepass-client | stagepass config set-secret corp
  stagepass config set-secret corp --delete")]
    SetSecret(SetSecretArgs),
}

#[derive(Debug, Args)]
pub struct SetSecretArgs {
    /// The profile whose client secret this is.
    pub profile: String,
    /// Delete the stored secret instead.
    #[arg(long)]
    pub delete: bool,
}

#[derive(Debug, Args)]
pub struct ConfigInitArgs {
    /// The IdP.
    #[arg(long, default_value = "generic", value_parser = clap::builder::PossibleValuesParser::new(stagepass_core::presets::NAMES))]
    pub preset: String,
    /// Profile name (default: the preset's name).
    #[arg(long, value_name = "PROFILE")]
    pub name: Option<String>,
    /// The ID of the public client registered at the IdP.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The issuer URL (generic; Okta custom authorization servers).
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Keycloak realm.
    #[arg(long)]
    pub realm: Option<String>,
    /// Entra directory (tenant) ID.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The IdP's host: Keycloak server, Okta or Auth0 domain, GitLab instance.
    #[arg(long, value_name = "HOST")]
    pub domain: Option<String>,
    /// The API the access tokens are for (Entra: its api://APP-ID).
    #[arg(long, value_name = "URI")]
    pub audience: Option<String>,
    /// Print the profile instead of writing it.
    #[arg(long)]
    pub print: bool,
    /// Replace a profile of the same name (the old one is kept, commented out).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Print the raw JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Keep printing new entries as they are written.
    #[arg(long, short)]
    pub follow: bool,
    /// Only entries newer than this: 30m, 2h, 7d, or an RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only what delegation (or remote key) NAME did, and its creation and revocation.
    #[arg(long, value_name = "NAME")]
    pub delegation: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProfileArg {
    /// Profile from the config; may be left out when the config has exactly one.
    pub profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub json: JsonArg,
    /// Keep running and print every change (signed in, refreshed, needs sign-in, refresh
    /// failing, signed out) as it happens.
    #[arg(long, short)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct ProfileJsonArgs {
    #[command(flatten)]
    pub profile: ProfileArg,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub profile: ProfileArg,
    /// Use the device authorization grant: approve a code on any device.
    #[arg(long, conflicts_with = "browser")]
    pub device: bool,
    /// Use the browser: authorization code + PKCE with a redirect to 127.0.0.1.
    #[arg(long)]
    pub browser: bool,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long)]
    pub no_open: bool,
    /// Print each step as a JSON line on stdout (for the tray and scripts).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub profile: ProfileArg,
    /// Print the OIDC id_token instead of the access token.
    #[arg(long)]
    pub id_token: bool,
    /// Refresh first when the token expires within this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub min_valid: u64,
    /// Print {"token","expires_at","token_type","profile"}.
    #[arg(long, conflicts_with = "header")]
    pub json: bool,
    /// Print `Authorization: Bearer TOKEN`, for `curl -H @-` and the like.
    #[arg(long)]
    pub header: bool,
    /// Never start a sign-in: when the profile needs one, fail at once (exit code 4). Also
    /// implied by GIT_TERMINAL_PROMPT=0, and by having neither a terminal nor a display.
    #[arg(long)]
    pub no_interactive: bool,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub action: Option<AgentAction>,
}

#[derive(Debug, Subcommand)]
pub enum AgentAction {
    /// Run the agent in the foreground, logging to the terminal (the default).
    Run,
    /// Show whether an agent runs, its pid and version.
    Status(JsonArg),
    /// Stop the running agent. Signed-in profiles stay signed in (the keychain keeps them).
    Stop,
}

/// The subcommands that git, docker, kubectl and scripts start many times per command. For
/// them, clap builds only that subcommand's definition: the whole tree costs about 100 KiB of
/// heap and a few dozen page faults at every start-up, a third of `stagepass token`'s budget.
/// Help (`-h`, `--help`) always goes through the whole tree, so it reads the same.
fn hot_subcommand(args: &[std::ffi::OsString]) -> Option<clap::Command> {
    use clap::Args as _;
    let name = args.get(1)?.to_str()?;
    if args[2..]
        .iter()
        .any(|arg| arg == "-h" || arg == "--help" || arg == "--")
    {
        return None;
    }
    let subcommand = match name {
        "token" => TokenArgs::augment_args(clap::Command::new("token")),
        "git-credential" => HelperArgs::augment_args(clap::Command::new("git-credential")),
        "docker-credential" => HelperArgs::augment_args(clap::Command::new("docker-credential")),
        "kube-credential" => {
            KubeCredentialArgs::augment_args(clap::Command::new("kube-credential"))
        }
        _ => return None,
    };
    Some(
        clap::Command::new("stagepass")
            .subcommand_required(true)
            .subcommand(subcommand),
    )
}

impl Cli {
    /// Parses `args` (the program name first). clap's error (also `--help` and `--version`)
    /// is left to `main`, the one place the process exits from.
    pub fn try_parse_args(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
        use clap::FromArgMatches as _;
        match hot_subcommand(&args) {
            Some(command) => command
                .try_get_matches_from(args)
                .and_then(|matches| Cli::from_arg_matches(&matches)),
            None => Cli::try_parse_from(args),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    fn both_ways(line: &str) -> (String, String) {
        let args: Vec<std::ffi::OsString> = line.split_whitespace().map(Into::into).collect();
        let render = |parsed: Result<Cli, clap::Error>| match parsed {
            Ok(cli) => format!("{cli:?}"),
            Err(err) => format!("{:?}: {}", err.kind(), err.render()),
        };
        let hot = hot_subcommand(&args).expect("a hot subcommand");
        let fast = hot
            .try_get_matches_from(args.clone())
            .and_then(|matches| Cli::from_arg_matches(&matches));
        let full = Cli::command()
            .try_get_matches_from(args)
            .and_then(|matches| Cli::from_arg_matches(&matches));
        (render(fast), render(full))
    }

    #[test]
    fn hot_subcommands_parse_as_the_whole_tree_does() {
        for line in [
            "stagepass token",
            "stagepass token corp --min-valid 300 --json",
            "stagepass token --id-token --header --no-interactive",
            "stagepass token --json --header",
            "stagepass token --min-valid soon",
            "stagepass token --bogus",
            "stagepass token a b",
            "stagepass git-credential get",
            "stagepass git-credential",
            "stagepass docker-credential list",
            "stagepass kube-credential corp --access-token",
            "stagepass kube-credential --id-token",
        ] {
            let (fast, full) = both_ways(line);
            assert_eq!(fast, full, "`{line}`");
        }
    }

    #[test]
    fn help_and_other_subcommands_take_the_whole_tree() {
        for line in [
            "stagepass token --help",
            "stagepass token -h",
            "stagepass status",
            "stagepass",
            "stagepass help token",
        ] {
            let args: Vec<std::ffi::OsString> = line.split_whitespace().map(Into::into).collect();
            assert!(hot_subcommand(&args).is_none(), "`{line}`");
        }
    }
}
