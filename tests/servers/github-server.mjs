// Test-only GitHub: the OAuth endpoints, the REST API's `/user` and token revocation, and git
// over HTTPS, as GitHub's documentation specifies them (each behaviour cites its page). GitHub
// cannot be reached from the test machines; this is what stagepass's GitHub profile kind is
// tested against. Served like GitHub Enterprise Server: the web endpoints at the root, the
// REST API under /api/v3.
//
// Usage: node tests/servers/github-server.mjs
// Ready: one line on stdout, {"url":"http://127.0.0.1:PORT"}; everything else goes to stderr.
// Environment (all optional):
//   GITHUB_CLIENT_ID        the app's client_id (default Iv1.stagepasstest)
//   GITHUB_CLIENT_SECRET    the app's client secret; without it revocation is refused
//   GITHUB_EXPIRING=0       an OAuth App (or a GitHub App with expiration off): `gho_` tokens
//                           that never expire, no refresh token. Default: GitHub App user tokens
//   GITHUB_TOKEN_TTL        seconds a `ghu_` token lives (default 28800, GitHub's 8 h)
//   GITHUB_DEVICE_INTERVAL  the device flow's polling interval in seconds (default 5)
//   GITHUB_DEVICE_TTL       seconds a device code lives (default 900)
//   GITHUB_DEVICE_FLOW=0    the app has the device flow disabled
//   GITHUB_USER_NAME        the user's display name (default "Mona Lisa Octocat")
//   GIT_PROJECT_ROOT        bare repositories NAME.git served at URL/NAME.git (git optional)
// Test controls (no credentials):
//   POST /test/device/approve?user_code=X   the user enters the code and authorizes the app
//   POST /test/device/deny?user_code=X      the user cancels instead
//   POST /test/device/slow-down?user_code=X the next poll gets `slow_down` however timely
//   GET  /test/stats  {device_codes, polls: {outcome: n}, issued, refreshes, refresh_refused,
//                      user_calls, revoked, git: {accepted, rejected, anonymous}, poll_gaps_ms}
// TEST_SERVER_DEBUG=1 logs every request to stderr.
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import { credentials, requestListener, sendJson, serve } from './common.mjs';
import { gitBackend } from './git-backend.mjs';

const NAME = 'github-server';
const CLIENT_ID = process.env.GITHUB_CLIENT_ID || 'Iv1.stagepasstest';
const CLIENT_SECRET = process.env.GITHUB_CLIENT_SECRET || null;
const EXPIRING = process.env.GITHUB_EXPIRING !== '0';
const TOKEN_TTL = Number(process.env.GITHUB_TOKEN_TTL || 28800);
const DEVICE_INTERVAL = Number(process.env.GITHUB_DEVICE_INTERVAL ?? 5);
const DEVICE_TTL = Number(process.env.GITHUB_DEVICE_TTL || 900);
const DEVICE_FLOW = process.env.GITHUB_DEVICE_FLOW !== '0';
const PROJECT_ROOT = process.env.GIT_PROJECT_ROOT || null;
// "Get the authenticated user": `login`, the numeric `id`, `name` (which users may set freely).
// https://docs.github.com/en/rest/users/users#get-the-authenticated-user
const USER = {
  login: 'octocat',
  id: 583231,
  name: process.env.GITHUB_USER_NAME ?? 'Mona Lisa Octocat',
  email: null,
  type: 'User',
};

const stats = {
  device_codes: 0,
  polls: {},
  issued: 0,
  refreshes: 0,
  refresh_refused: 0,
  user_calls: 0,
  revoked: 0,
  git: { accepted: 0, rejected: 0, anonymous: 0 },
  poll_gaps_ms: [],
};

const deviceCodes = new Map(); // device_code -> {user_code, expires, interval, state, lastPoll}
const accessTokens = new Map(); // token -> {expires (ms or null), refresh}
const refreshTokens = new Map(); // ghr_ -> {access, used, device}
const codes = new Map(); // web flow code -> {redirect_uri, challenge, expires}

const random = (prefix, bytes = 27) => `${prefix}${randomBytes(bytes).toString('base64url')}`;

// "By default, the response takes the following form: access_token=...&scope=...&token_type=
// bearer. You can also receive the response in different formats if you provide the format in
// the Accept header": form-encoded unless the client asks for JSON.
// https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#2-users-are-redirected-back-to-your-site-by-github
function reply(req, res, body) {
  if ((req.headers.accept || '').includes('application/json')) return sendJson(res, 200, body);
  res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(body)) form.append(key, String(value));
  res.end(form.toString());
}

// GitHub answers OAuth errors with HTTP 200 and `error`, `error_description`, `error_uri`.
// https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors
function oauthError(req, res, error, description, extra = {}) {
  return reply(req, res, {
    error,
    error_description: description,
    error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/',
    ...extra,
  });
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  const type = req.headers['content-type'] || '';
  if (type.includes('application/json')) return JSON.parse(text || '{}');
  return Object.fromEntries(new URLSearchParams(text));
}

const same = (a, b) => {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
};

// A new token pair. GitHub App user tokens: `ghu_`, `expires_in` 28800, a `ghr_` refresh token
// with `refresh_token_expires_in` (six months). With expiration off (and for OAuth Apps): a
// token with no expiry and no refresh token (`gho_` for OAuth Apps).
// https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app
// https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/about-authentication-to-github#githubs-token-formats
function issue(device) {
  stats.issued += 1;
  if (!EXPIRING) {
    const access = random('gho_');
    accessTokens.set(access, { expires: null, refresh: null });
    return { access_token: access, token_type: 'bearer', scope: '' };
  }
  const access = random('ghu_');
  const refresh = random('ghr_', 57);
  accessTokens.set(access, { expires: Date.now() + TOKEN_TTL * 1000, refresh });
  refreshTokens.set(refresh, { access, used: false, device });
  return {
    access_token: access,
    expires_in: TOKEN_TTL,
    refresh_token: refresh,
    refresh_token_expires_in: 15811200,
    scope: '',
    token_type: 'bearer',
  };
}

function currentToken(token) {
  const entry = accessTokens.get(token);
  if (!entry) return null;
  if (entry.expires !== null && entry.expires <= Date.now()) return null;
  return entry;
}

function clientAuthenticated(form) {
  return CLIENT_SECRET !== null && form.client_secret !== undefined && same(form.client_secret, CLIENT_SECRET);
}

// Device flow, step 1: `POST /login/device/code` with `client_id` (and `scope`) answers
// device_code, user_code, verification_uri, expires_in (900) and interval (5). An app without
// the device flow enabled is refused with `device_flow_disabled`.
// https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#step-1-app-requests-the-device-and-user-verification-codes-from-github
// https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#error-codes-for-the-device-flow
async function deviceCode(req, res, base) {
  const form = await readForm(req);
  if (form.client_id !== CLIENT_ID) {
    return oauthError(req, res, 'incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
  }
  if (!DEVICE_FLOW) {
    return oauthError(req, res, 'device_flow_disabled', 'Device flow must be explicitly enabled for this App');
  }
  stats.device_codes += 1;
  const device_code = randomBytes(20).toString('hex');
  const letters = () => randomBytes(4).toString('hex').toUpperCase().slice(0, 4);
  const user_code = `${letters()}-${letters()}`;
  deviceCodes.set(device_code, {
    user_code,
    expires: Date.now() + DEVICE_TTL * 1000,
    interval: DEVICE_INTERVAL,
    state: 'pending',
    lastPoll: null,
  });
  return reply(req, res, {
    device_code,
    user_code,
    verification_uri: `${base}/login/device`,
    expires_in: DEVICE_TTL,
    interval: DEVICE_INTERVAL,
  });
}

// Device flow, step 3: the app polls `POST /login/oauth/access_token` with client_id,
// device_code and grant_type urn:ietf:params:oauth:grant-type:device_code. Errors:
// `authorization_pending` (keep polling), `slow_down` (polled too fast: 5 extra seconds are
// added to the interval, and the answer includes the new `interval`), `expired_token` (the
// code's 900 s are over), `access_denied` (the user cancelled), `incorrect_device_code`.
// https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#step-3-app-polls-github-to-check-if-the-user-authorized-the-device
// https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#error-codes-for-the-device-flow
function pollDevice(req, res, form) {
  const entry = deviceCodes.get(form.device_code);
  const outcome = (name) => {
    stats.polls[name] = (stats.polls[name] ?? 0) + 1;
  };
  if (!entry) {
    outcome('incorrect_device_code');
    return oauthError(req, res, 'incorrect_device_code', 'The device_code provided is not valid.');
  }
  const now = Date.now();
  if (entry.lastPoll !== null) stats.poll_gaps_ms.push(now - entry.lastPoll);
  const tooSoon = entry.lastPoll !== null && now - entry.lastPoll < entry.interval * 1000;
  entry.lastPoll = now;
  if (now >= entry.expires) {
    outcome('expired_token');
    return oauthError(req, res, 'expired_token', 'The device_code has expired.');
  }
  if (tooSoon || entry.slowDown) {
    entry.slowDown = false;
    entry.interval += 5;
    outcome('slow_down');
    return oauthError(req, res, 'slow_down', 'Too many requests have been made in the same timeframe.', {
      interval: entry.interval,
    });
  }
  if (entry.state === 'denied') {
    outcome('access_denied');
    deviceCodes.delete(form.device_code);
    return oauthError(req, res, 'access_denied', 'The authorization request was denied.');
  }
  if (entry.state === 'pending') {
    outcome('authorization_pending');
    return oauthError(req, res, 'authorization_pending', 'The authorization request is still pending.');
  }
  outcome('approved');
  deviceCodes.delete(form.device_code);
  return reply(req, res, issue(true));
}

// Refreshing: `grant_type=refresh_token` with client_id and the `ghr_` token (client_secret
// too, "unless the user access token was generated using the device flow"). The answer is a
// new `ghu_` and a new `ghr_`; "once you use a refresh token, that refresh token and the old
// user access token will no longer work". A used or unknown refresh token: `bad_refresh_token`.
// https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens
// https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors#bad-refresh-token
function refresh(req, res, form) {
  stats.refreshes += 1;
  const entry = refreshTokens.get(form.refresh_token);
  if (!entry || entry.used) {
    stats.refresh_refused += 1;
    return oauthError(req, res, 'bad_refresh_token', 'The refresh token passed is incorrect or expired.');
  }
  if (!entry.device && !clientAuthenticated(form)) {
    stats.refresh_refused += 1;
    return oauthError(req, res, 'incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
  }
  entry.used = true;
  accessTokens.delete(entry.access);
  return reply(req, res, issue(entry.device));
}

// The web flow's code exchange: client_id, client_secret (required), code, redirect_uri and,
// with PKCE, code_verifier (S256). `bad_verification_code` for a wrong or used code.
// https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#2-users-are-redirected-back-to-your-site-by-github
function exchangeCode(req, res, form) {
  if (!clientAuthenticated(form)) {
    return oauthError(req, res, 'incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
  }
  const entry = codes.get(form.code);
  codes.delete(form.code);
  if (!entry || entry.expires <= Date.now() || entry.redirect_uri !== form.redirect_uri) {
    return oauthError(req, res, 'bad_verification_code', 'The code passed is incorrect or expired.');
  }
  const challenge = createHash('sha256').update(form.code_verifier ?? '').digest('base64url');
  if (entry.challenge && challenge !== entry.challenge) {
    return oauthError(req, res, 'bad_verification_code', 'The code passed is incorrect or expired.');
  }
  return reply(req, res, issue(false));
}

async function token(req, res) {
  const form = await readForm(req);
  if (form.client_id !== CLIENT_ID) {
    return oauthError(req, res, 'incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
  }
  switch (form.grant_type) {
    case 'urn:ietf:params:oauth:grant-type:device_code':
      return pollDevice(req, res, form);
    case 'refresh_token':
      return refresh(req, res, form);
    case 'authorization_code':
    case undefined:
      return exchangeCode(req, res, form);
    default:
      return oauthError(req, res, 'unsupported_grant_type', 'The grant type is not supported.');
  }
}

// The web flow's authorize page, for a user who already authorized the app: GitHub redirects
// straight back to the (loopback, any port) redirect_uri with `code` and `state`.
// https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#loopback-redirect-urls
function authorize(req, res, url) {
  const params = url.searchParams;
  const redirect = params.get('redirect_uri') || '';
  if (params.get('client_id') !== CLIENT_ID || !/^http:\/\/127\.0\.0\.1:\d+\//.test(redirect)) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    return res.end('Not Found\n');
  }
  const code = randomBytes(10).toString('hex');
  const challenge = params.get('code_challenge');
  if (challenge && params.get('code_challenge_method') !== 'S256') {
    res.writeHead(400, { 'content-type': 'text/plain' });
    return res.end('code_challenge_method must be S256\n');
  }
  codes.set(code, { redirect_uri: redirect, challenge, expires: Date.now() + 600000 });
  const back = new URL(redirect);
  back.searchParams.set('code', code);
  back.searchParams.set('state', params.get('state') || '');
  res.writeHead(302, { location: back.toString() });
  res.end();
}

// The REST API takes `Authorization: Bearer TOKEN` (or `token TOKEN`); a bad one gets 401
// {"message":"Bad credentials"}.
// https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api
function apiToken(req) {
  const [scheme, value] = (req.headers.authorization || '').split(/\s+/, 2);
  if (!value || !/^(bearer|token)$/i.test(scheme)) return null;
  return currentToken(value) ? value : null;
}

function badCredentials(res) {
  return sendJson(res, 401, {
    message: 'Bad credentials',
    documentation_url: 'https://docs.github.com/rest',
    status: '401',
  });
}

// "Delete an app token": `DELETE /applications/{client_id}/token`, Basic auth with the app's
// client_id and client_secret, JSON body {"access_token": ...}; 204 when revoked, 422 when the
// body is wrong, 404 otherwise.
// https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-token
async function deleteToken(req, res, clientId) {
  const creds = credentials(req.headers.authorization);
  const body = await readForm(req);
  const authorized =
    creds?.scheme === 'basic' && clientId === CLIENT_ID && same(creds.user, CLIENT_ID) && CLIENT_SECRET !== null && same(creds.token, CLIENT_SECRET);
  if (!authorized) return sendJson(res, 404, { message: 'Not Found' });
  if (typeof body.access_token !== 'string') return sendJson(res, 422, { message: 'Validation Failed' });
  const entry = accessTokens.get(body.access_token);
  if (!entry) return sendJson(res, 404, { message: 'Not Found' });
  accessTokens.delete(body.access_token);
  if (entry.refresh) refreshTokens.delete(entry.refresh);
  stats.revoked += 1;
  res.writeHead(204);
  return res.end();
}

async function api(req, res, path) {
  // https://docs.github.com/en/rest/users/users#get-the-authenticated-user
  if (req.method === 'GET' && path === '/user') {
    stats.user_calls += 1;
    if (!apiToken(req)) return badCredentials(res);
    return sendJson(res, 200, USER);
  }
  const revoke = /^\/applications\/([^/]+)\/token$/.exec(path);
  if (req.method === 'DELETE' && revoke) return deleteToken(req, res, decodeURIComponent(revoke[1]));
  return sendJson(res, 404, { message: 'Not Found' });
}

// Git over HTTPS with a user access token: username `x-access-token`, the token as password.
// Only a current token gets through; anything else is asked for credentials again (401).
// https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation#about-authentication-as-a-github-app-installation
const runGit = PROJECT_ROOT ? gitBackend(NAME, PROJECT_ROOT) : null;

function git(req, res, url) {
  const creds = credentials(req.headers.authorization);
  const challenge = () => {
    req.resume();
    res.writeHead(401, { 'www-authenticate': 'Basic realm="GitHub"', 'content-type': 'text/plain' });
    res.end('authentication required\n');
  };
  if (!creds) {
    stats.git.anonymous += 1;
    return challenge();
  }
  if (creds.scheme !== 'basic' || creds.user !== 'x-access-token' || !currentToken(creds.token)) {
    stats.git.rejected += 1;
    console.error(`${NAME}: git 401: ${creds.scheme} user ${JSON.stringify(creds.user ?? null)}, token ${currentToken(creds.token) ? 'current' : 'not current'}`);
    return challenge();
  }
  stats.git.accepted += 1;
  return runGit(req, res, url, USER.login);
}

function testControl(req, res, url) {
  if (req.method === 'GET' && url.pathname === '/test/stats') return sendJson(res, 200, stats);
  const decision = /^\/test\/device\/(approve|deny|slow-down)$/.exec(url.pathname);
  if (req.method === 'POST' && decision) {
    const userCode = url.searchParams.get('user_code');
    for (const entry of deviceCodes.values()) {
      if (entry.user_code !== userCode) continue;
      // GitHub rate-limits polling per app as well: a poll on time may still get slow_down.
      if (decision[1] === 'slow-down') entry.slowDown = true;
      else entry.state = decision[1] === 'approve' ? 'approved' : 'denied';
      return sendJson(res, 200, { state: entry.state, slow_down: !!entry.slowDown });
    }
    return sendJson(res, 404, { error: 'no such user code' });
  }
  return sendJson(res, 404, { error: 'unknown test control' });
}

let base = '';

async function handle(req, res) {
  const url = new URL(req.url, base);
  const path = url.pathname;
  if (path.startsWith('/test/')) return testControl(req, res, url);
  if (req.method === 'POST' && path === '/login/device/code') return deviceCode(req, res, base);
  if (req.method === 'POST' && path === '/login/oauth/access_token') return token(req, res);
  if (req.method === 'GET' && path === '/login/oauth/authorize') return authorize(req, res, url);
  if (req.method === 'GET' && path === '/login/device') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end('<h1>Device activation</h1><p>Enter the code shown by the app.</p>\n');
  }
  if (path.startsWith('/api/v3/')) return api(req, res, path.slice('/api/v3'.length));
  if (runGit && /\.git(\/|$)/.test(path)) return git(req, res, url);
  return sendJson(res, 404, { message: 'Not Found' });
}

const server = http.createServer(requestListener(NAME, handle));
await serve(server, {
  name: NAME,
  ready: (port) => {
    base = `http://127.0.0.1:${port}`;
    return { url: base };
  },
});
console.error(`${NAME}: client ${CLIENT_ID}, ${EXPIRING ? `expiring tokens (${TOKEN_TTL} s)` : 'tokens that never expire'}`);
