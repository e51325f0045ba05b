// Test-only OpenID provider for stagepass end-to-end tests (panva/oidc-provider 9.x).
//
// Usage: node server.mjs            (listens on 127.0.0.1, ephemeral port)
//        IDP_PORT=4000 node server.mjs
//
// Misconfigurations on purpose, for `stagepass doctor`'s tests:
//   IDP_DATE_SKEW_SECS=-600    every response's Date header is this far off (a skewed clock)
//   IDP_ISSUED_AUDIENCE=URI    access tokens carry this `aud` whatever resource was asked for
//                              (like an IdP that ignores RFC 8707)
//   clients stagepass-slash, stagepass-localhost and stagepass-wrong-path have redirect URIs
//   that differ from the one stagepass uses; oidc-agent-bench is a confidential client.
//
// Once listening, prints exactly one line on stdout:
//   {"issuer":"http://127.0.0.1:PORT"}
// Everything else goes to stderr. Exits cleanly on SIGTERM/SIGINT.
//
// NOT FOR PRODUCTION: dev interactions (any login name is accepted), keys and
// cookie secrets are generated per process, all state is in memory.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { Console } from 'node:console';

// oidc-provider prints its NOTICEs with console.info, i.e. on stdout. stdout
// is reserved for the single issuer line, so route every console method to
// stderr, and drop the noise that is expected for a dev-only provider.
const errConsole = new Console({ stdout: process.stderr, stderr: process.stderr });
const NOISE = [
  /oidc-provider NOTICE: /,
  /devInteractions is enabled/,
  /development-only in-memory adapter is used/,
  /already parsed request body detected/,
];
const quiet = (fn) => (...args) => {
  const first = typeof args[0] === 'string' ? args[0] : '';
  if (NOISE.some((re) => re.test(first))) return;
  fn(...args);
};
for (const m of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
  console[m] = quiet(errConsole[m].bind(errConsole));
}

// RSA key generation takes a few hundred ms: run it on the thread pool while
// oidc-provider is being loaded.
const keyPromise = new Promise((resolve, reject) => {
  crypto.generateKeyPair('rsa', { modulusLength: 2048 }, (err, _pub, priv) => (err ? reject(err) : resolve(priv)));
});
const { default: Provider, errors } = await import('oidc-provider');

function envInt(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`idp: ${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

function envBool(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  return !['0', 'false', 'no', 'off'].includes(raw.toLowerCase());
}

const PORT = envInt('IDP_PORT', 0);
const DATE_SKEW_SECS = Number(process.env.IDP_DATE_SKEW_SECS || 0);
if (!Number.isInteger(DATE_SKEW_SECS)) {
  console.error(`idp: IDP_DATE_SKEW_SECS must be an integer, got ${JSON.stringify(process.env.IDP_DATE_SKEW_SECS)}`);
  process.exit(2);
}
const ISSUED_AUDIENCE = process.env.IDP_ISSUED_AUDIENCE || '';
const ACCESS_TOKEN_TTL = envInt('IDP_ACCESS_TOKEN_TTL', 60);
const ID_TOKEN_TTL = envInt('IDP_ID_TOKEN_TTL', 3600);
const REFRESH_TOKEN_TTL = envInt('IDP_REFRESH_TOKEN_TTL', 86400);
const DEVICE_CODE_TTL = envInt('IDP_DEVICE_CODE_TTL', 600);
// When true (default), a token/refresh request WITHOUT `resource` still gets
// an access token for the resource granted at authorization (like most IdPs).
// When false, oidc-provider's strict default applies: no `resource` at the
// token endpoint + `openid` scope => opaque userinfo access token.
const USE_GRANTED_RESOURCE = envBool('IDP_USE_GRANTED_RESOURCE', true);

// Resource servers (RFC 8707 resource indicators) that get JWT access tokens.
const RESOURCES = new Set(['https://backstage.test']);
for (const r of (process.env.IDP_EXTRA_RESOURCES || '').split(/[\s,]+/).filter(Boolean)) {
  RESOURCES.add(r);
}
const SCOPES = ['openid', 'email', 'profile', 'groups', 'offline_access'];

const USERS = {
  alice: {
    email: 'alice@example.com',
    email_verified: true,
    name: 'Alice Example',
    preferred_username: 'alice',
    groups: ['developers', 'platform'],
  },
  bob: {
    email: 'bob@example.com',
    email_verified: true,
    name: 'Bob Example',
    preferred_username: 'bob',
    groups: ['developers'],
  },
  // In as many groups as an enterprise directory puts people in: the login stagepass keeps for
  // her (refresh and ID token) is over Windows Credential Manager's 2,560 bytes per entry.
  carol: {
    email: 'carol@example.com',
    email_verified: true,
    name: 'Carol Example',
    preferred_username: 'carol',
    groups: Array.from({ length: 60 }, (_, i) => `team-${String(i).padStart(2, '0')}-engineering`),
  },
  // Claims an IdP user could set themselves, built to drive a terminal (window title, clear
  // screen, colours, CSI as one C1 character, a bidi override) and a notification's markup.
  mallory: {
    email: 'mallory\u001b]0;pwned\u0007@example.com',
    email_verified: true,
    name: 'Mallory \u001b[2J\u001b[31mRED\u202e',
    preferred_username: 'mallory\u009b31m',
    groups: ['<a href="https://evil.example/">click</a>', '\u001b[1mdevelopers'],
  },
};

function nativeClient(clientId, redirectUri = 'http://127.0.0.1/callback') {
  return {
    client_id: clientId,
    client_name: clientId,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: [
      'authorization_code',
      'refresh_token',
      'urn:ietf:params:oauth:grant-type:device_code',
    ],
    response_types: ['code'],
    // Native + loopback: any port is accepted, the path must match exactly.
    redirect_uris: [redirectUri],
  };
}

async function testJwks() {
  // Fresh per process: nothing secret is ever written to disk.
  const jwk = (await keyPromise).export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: `test-${crypto.randomBytes(4).toString('hex')}`, use: 'sig', alg: 'RS256' }] };
}

let handler = (_req, res) => {
  res.statusCode = 503;
  res.end('starting');
};
const server = http.createServer((req, res) => {
  if (DATE_SKEW_SECS !== 0) {
    res.setHeader('Date', new Date(Date.now() + DATE_SKEW_SECS * 1000).toUTCString());
  }
  handler(req, res);
});

// Install signal handlers before anything is printed, so a parent that
// signals right after reading the issuer line never hits the default action.
let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`idp: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const configuration = {
  clients: [
    nativeClient('stagepass-test'),
    nativeClient('stagepass-other'),
    // Registered with redirect URIs that are subtly not stagepass's, for `doctor`.
    nativeClient('stagepass-slash', 'http://127.0.0.1/callback/'),
    nativeClient('stagepass-localhost', 'http://localhost/callback'),
    nativeClient('stagepass-wrong-path', 'http://127.0.0.1/oauth/callback'),
    // A confidential client, as enterprise IdPs and Google's desktop clients hand them out:
    // stagepass keeps its secret in the keychain (`stagepass config set-secret`).
    {
      ...nativeClient('stagepass-confidential'),
      client_secret: 'confidential-test-secret',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    // For the benchmark peer: oidc-agent 4.2 cannot use a public client.
    {
      ...nativeClient('oidc-agent-bench'),
      client_secret: 'oidc-agent-bench-secret',
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: await testJwks(),
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },

  scopes: SCOPES,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  // Put scope-derived claims in the ID token even when an opaque (userinfo)
  // access token is issued; the default (true) would leave only `sub` there.
  conformIdTokenClaims: false,

  async findAccount(_ctx, sub) {
    const user = Object.hasOwn(USERS, sub) ? USERS[sub] : undefined;
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, ...user };
      },
    };
  },

  responseTypes: ['code', 'none'],
  pkce: { required: () => true }, // oidc-provider 9 only supports S256

  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // No resource requested => none (opaque access token).
      async defaultResource(_ctx, _client, oneOf) {
        return oneOf;
      },
      async useGrantedResource() {
        return USE_GRANTED_RESOURCE;
      },
      async getResourceServerInfo(_ctx, resourceIndicator) {
        if (!RESOURCES.has(resourceIndicator)) {
          throw new errors.InvalidTarget(`unknown resource indicator ${resourceIndicator}`);
        }
        return {
          scope: SCOPES.join(' '),
          audience: ISSUED_AUDIENCE || resourceIndicator,
          accessTokenTTL: ACCESS_TOKEN_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },

  // Always issue a refresh token to clients allowed the refresh_token grant
  // (default needs offline_access, which is dropped unless prompt=consent).
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  // Rotate on every use; reuse of a rotated token => invalid_grant and the
  // whole grant is revoked (built into oidc-provider's refresh_token grant).
  rotateRefreshToken: true,

  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    IdToken: ID_TOKEN_TTL,
    RefreshToken: REFRESH_TOKEN_TTL,
    DeviceCode: DEVICE_CODE_TTL,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: Math.max(REFRESH_TOKEN_TTL, 3600), // RTs without offline_access expire with the session
    Grant: Math.max(REFRESH_TOKEN_TTL, 3600),
  },

  renderError(ctx, out) {
    // Plain, greppable error page (the default one loads web fonts).
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><head><title>oops! something went wrong</title></head><body>
<h1>oops! something went wrong</h1>
${Object.entries(out).map(([k, v]) => `<pre><strong>${escapeHtml(k)}</strong>: ${escapeHtml(String(v))}</pre>`).join('\n')}
</body></html>`;
  },
};

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

const provider = new Provider(issuer, configuration);
provider.proxy = false;

// Test controls, on the IdP's own loopback port: `GET /test/stats` counts token-endpoint
// calls per grant type (tests count refreshes at the IdP instead of inferring them), and
// `GET /test/outage?on=1|0` makes the token endpoint answer 503 like an IdP that is down.
const stats = { token: {} };
let outage = false;
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/stats') {
    ctx.body = stats;
    return;
  }
  if (ctx.path === '/test/outage') {
    outage = ctx.query.on === '1';
    ctx.body = { outage };
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/token') {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    const grantType = new URLSearchParams(raw).get('grant_type') ?? 'none';
    stats.token[grantType] = (stats.token[grantType] ?? 0) + 1;
    if (outage) {
      ctx.status = 503;
      ctx.body = 'down for the test';
      return;
    }
    ctx.req.body = raw; // oidc-provider's body parser falls back to req.body
  }
  await next();
});

// devInteractions accepts any login name and then fails with a 500 when
// findAccount does not know it. Turn an unknown login into a clean
// access_denied for the client instead.
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path) && ctx.is('application/x-www-form-urlencoded')) {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    const form = new URLSearchParams(raw);
    if (form.get('prompt') === 'login' && !Object.hasOwn(USERS, form.get('login') ?? '')) {
      console.error(`idp: unknown test user ${JSON.stringify(form.get('login'))}, denying`);
      ctx.set('cache-control', 'no-store');
      await provider.interactionFinished(ctx.req, ctx.res, {
        error: 'access_denied',
        error_description: 'unknown test user',
      }, { mergeWithLastSubmission: false });
      ctx.respond = false;
      return;
    }
    ctx.req.body = raw; // oidc-provider's body parser falls back to req.body
  }
  await next();
});

provider.on('server_error', (_ctx, err) => console.error('idp: server_error', err));
if (process.env.IDP_DEBUG) {
  for (const ev of ['grant.error', 'authorization.error', 'grant.revoked', 'grant.success']) {
    provider.on(ev, (ctx, err) => console.error(`idp: ${ev}`, err?.message ?? '', err?.error_description ?? ''));
  }
}

handler = provider.callback();

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
console.error(`idp: listening, issuer ${issuer}`);

