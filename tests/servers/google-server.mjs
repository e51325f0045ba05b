// Test-only stand-in for Google's OAuth 2.0 / OpenID Connect server, as a "Desktop app" client
// sees it. Google cannot be reached from the test machines; every behaviour below is the one
// Google's documentation specifies, cited above the code that implements it:
//
//   [native]    OAuth 2.0 for Mobile & Desktop Apps
//               https://developers.google.com/identity/protocols/oauth2/native-app
//   [oauth2]    Using OAuth 2.0 to Access Google APIs (refresh token expiration)
//               https://developers.google.com/identity/protocols/oauth2#expiration
//   [oidc]      OpenID Connect (discovery document, id_token)
//               https://developers.google.com/identity/openid-connect/openid-connect
//   [device]    OAuth 2.0 for TV and Limited-Input Device Applications
//               https://developers.google.com/identity/protocols/oauth2/limited-input-device
//
// Usage: GOOGLE_CLIENT_ID=… GOOGLE_CLIENT_SECRET=… [GOOGLE_PUBLISHING_STATUS=testing|production]
//          [GOOGLE_ACCESS_TOKEN_TTL=3599] node tests/servers/google-server.mjs
// Ready: one line on stdout, {"url":"http://127.0.0.1:PORT"} (the URL is also the issuer).
// Browser pages are the shapes tests/idp/browser.mjs drives: a login form (hidden
// prompt=login) and a consent form (hidden prompt=consent); the login name becomes
// NAME@example.com.
// Test controls (no credentials):
//   GET  /test/stats                 what the server saw: authorizations (the parameters of each
//                                    authorization request), token_requests (grant, how the
//                                    client authenticated, outcome), refresh_tokens_issued
//   POST /test/client-secret?value=S the client's secret is now S (the old one is refused)
//   POST /test/publishing-status?value=testing|production
// Stops on SIGTERM/SIGINT, and when stdin closes if stdin is a pipe (see common.mjs).
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import { failer, requestListener, sendJson, serve } from './common.mjs';

const NAME = 'google-server';
const fail = failer(NAME);
const CLIENT_ID = process.env.GOOGLE_CLIENT_ID || fail('GOOGLE_CLIENT_ID is required');
let clientSecret = process.env.GOOGLE_CLIENT_SECRET || fail('GOOGLE_CLIENT_SECRET is required');
let publishingStatus = process.env.GOOGLE_PUBLISHING_STATUS || 'production';
const ACCESS_TOKEN_TTL = Number(process.env.GOOGLE_ACCESS_TOKEN_TTL || 3599);

// jose comes with the test IdP's oidc-provider: no install of our own.
const require = createRequire(new URL('../idp/package.json', import.meta.url));
const { SignJWT, exportJWK, generateKeyPair } = await import(require.resolve('jose'));

// [oidc] "Google's public keys … are published in the JWK format" at jwks_uri; id_tokens are
// RS256-signed JWTs.
const { privateKey, publicKey } = await generateKeyPair('RS256');
const KID = crypto.randomBytes(8).toString('hex');
const jwk = { ...(await exportJWK(publicKey)), kid: KID, alg: 'RS256', use: 'sig' };

const stats = { authorizations: [], token_requests: [], refresh_tokens_issued: 0 };
const transactions = new Map(); // txn -> the authorization request, waiting for the user
const codes = new Map(); // code -> what it grants, once
const refreshTokens = new Map(); // token -> {sub, scope, nonce-less grant, expiresAt|null}
const accessTokens = new Map(); // token -> {sub, expiresAt}
const consented = new Set(); // `${client}|${sub}`: the user has consented to this client

const random = (bytes = 24) => crypto.randomBytes(bytes).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const SEVEN_DAYS = 7 * 24 * 3600;

let issuer = '';

// [oidc] "Discovery document": the fields a client uses. Google's names the endpoints below,
// scopes_supported ["openid","email","profile"], RS256 only, both client_secret methods.
function discovery() {
  return {
    issuer,
    authorization_endpoint: `${issuer}/o/oauth2/v2/auth`,
    device_authorization_endpoint: `${issuer}/device/code`,
    token_endpoint: `${issuer}/token`,
    userinfo_endpoint: `${issuer}/v1/userinfo`,
    revocation_endpoint: `${issuer}/revoke`,
    jwks_uri: `${issuer}/oauth2/v3/certs`,
    response_types_supported: ['code', 'token', 'id_token', 'code token', 'code id_token', 'token id_token', 'code token id_token', 'none'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid', 'email', 'profile'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    claims_supported: ['aud', 'email', 'email_verified', 'exp', 'family_name', 'given_name', 'iat', 'iss', 'name', 'picture', 'sub'],
    code_challenge_methods_supported: ['plain', 'S256'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
  };
}

// [native] Step 2 and "Loopback IP address": a Desktop app's redirect URI is
// http://127.0.0.1:PORT (or [::1], or localhost) with any port.
function loopbackRedirect(uri) {
  try {
    const url = new URL(uri);
    return url.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
  } catch {
    return false;
  }
}

// [native] Step 2: scopes Google knows; anything else (such as `offline_access`) is refused
// with "Error 400: invalid_scope … Some requested scopes were invalid".
// One Google API scope besides the sign-in ones, for an app that calls a Google API.
const KNOWN_SCOPES = new Set(['openid', 'email', 'profile',
  'https://www.googleapis.com/auth/userinfo.email', 'https://www.googleapis.com/auth/userinfo.profile',
  'https://www.googleapis.com/auth/cloud-platform.read-only']);

function errorPage(res, status, code, detail) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>Error ${status}: ${code}</title><h1>Access blocked</h1><p>Error ${status}: ${code}</p><p>${detail}</p>`);
}

function formPage(res, title, action, fields, inputs = '') {
  const hidden = Object.entries(fields).map(([k, v]) => `<input type="hidden" name="${k}" value="${v}">`).join('');
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>${title}</title><form method="post" action="${action}">${hidden}${inputs}<button>Continue</button></form>`);
}

function authorize(res, params) {
  const get = (name) => params.get(name) ?? undefined;
  stats.authorizations.push({
    access_type: get('access_type') ?? null,
    prompt: get('prompt') ?? null,
    scope: get('scope') ?? null,
    code_challenge_method: get('code_challenge_method') ?? null,
  });
  if (get('client_id') !== CLIENT_ID) {
    return errorPage(res, 401, 'invalid_client', 'The OAuth client was not found.');
  }
  if (!loopbackRedirect(get('redirect_uri') || '')) {
    return errorPage(res, 400, 'redirect_uri_mismatch', "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy.");
  }
  const scopes = (get('scope') || '').split(' ').filter(Boolean);
  const invalid = scopes.filter((scope) => !KNOWN_SCOPES.has(scope));
  if (invalid.length > 0) {
    const valid = scopes.filter((scope) => KNOWN_SCOPES.has(scope));
    return errorPage(res, 400, 'invalid_scope', `Some requested scopes were invalid. {valid=[${valid.join(', ')}], invalid=[${invalid.join(', ')}]}`);
  }
  if (get('response_type') !== 'code') {
    return errorPage(res, 400, 'unsupported_response_type', 'Only the code flow is served here.');
  }
  const txn = random(12);
  transactions.set(txn, {
    redirectUri: get('redirect_uri'),
    state: get('state'),
    nonce: get('nonce'),
    scope: scopes.join(' '),
    codeChallenge: get('code_challenge'),
    codeChallengeMethod: get('code_challenge_method') || 'plain',
    // [native] Step 2, access_type: "offline … instructs the Google authorization server to
    // return a refresh token and an access token the first time that your application
    // exchanges an authorization code for tokens."
    offline: get('access_type') === 'offline',
    // [native] Step 2, prompt: "consent: Prompt the user for consent."
    forceConsent: (get('prompt') || '').split(' ').includes('consent'),
  });
  return formPage(res, 'Sign in - Google Accounts', '/signin', { prompt: 'login', txn },
    '<input name="login"><input name="password" type="password">');
}

// Ends the user's part: a code back to the loopback redirect URI ([native] Step 4).
function redirectWithCode(res, tx, sub, consentShown) {
  const code = `4/${random()}`;
  codes.set(code, {
    ...tx,
    sub,
    // The refresh token comes only with access_type=offline, and only when the user consents
    // now: the first time, or again because of prompt=consent ([native] Step 2).
    refresh: tx.offline && consentShown,
    expiresAt: now() + 600,
  });
  const target = new URL(tx.redirectUri);
  target.searchParams.set('code', code);
  if (tx.state !== undefined) target.searchParams.set('state', tx.state);
  target.searchParams.set('scope', tx.scope);
  res.writeHead(302, { location: target.href });
  res.end();
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function signIn(res, form) {
  const tx = transactions.get(form.get('txn'));
  if (!tx) return errorPage(res, 400, 'invalid_request', 'Unknown sign-in.');
  const sub = `1${crypto.createHash('sha256').update(form.get('login') || 'alice').digest('hex').replace(/\D/g, '').slice(0, 20)}`;
  tx.sub = sub;
  tx.email = `${form.get('login') || 'alice'}@example.com`;
  // [native] Step 2, prompt: with no prompt, Google asks for consent only the first time a
  // user grants the client access.
  if (tx.forceConsent || !consented.has(`${CLIENT_ID}|${sub}`)) {
    return formPage(res, 'Sign in with Google - consent', '/consent', { prompt: 'consent', txn: form.get('txn') });
  }
  transactions.delete(form.get('txn'));
  return redirectWithCode(res, tx, sub, false);
}

function consent(res, form) {
  const tx = transactions.get(form.get('txn'));
  if (!tx?.sub) return errorPage(res, 400, 'invalid_request', 'Unknown sign-in.');
  transactions.delete(form.get('txn'));
  consented.add(`${CLIENT_ID}|${tx.sub}`);
  return redirectWithCode(res, tx, tx.sub, true);
}

// [native] Step 5 and "Refreshing an access token": client_id and client_secret go with the
// code exchange and the refresh ("the client secret is obviously not treated as a secret",
// but it is required). In the body (client_secret_post) or as HTTP Basic (client_secret_basic),
// as the discovery document allows.
function clientAuth(req, form) {
  const header = req.headers.authorization || '';
  if (/^basic /i.test(header)) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const dec = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
    return { method: 'basic', id: dec(decoded.slice(0, colon)), secret: dec(decoded.slice(colon + 1)) };
  }
  if (form.has('client_secret')) {
    return { method: 'post', id: form.get('client_id'), secret: form.get('client_secret') };
  }
  return { method: 'none', id: form.get('client_id'), secret: null };
}

async function idToken(grant, nonce) {
  const claims = { azp: CLIENT_ID, sub: grant.sub, email: grant.email, email_verified: true, name: grant.email.split('@')[0] };
  if (nonce) claims.nonce = nonce;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: KID, typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(CLIENT_ID)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(privateKey);
}

function accessToken(sub) {
  const token = `ya29.${random(32)}`;
  accessTokens.set(token, { sub, expiresAt: now() + ACCESS_TOKEN_TTL });
  return token;
}

// [oauth2] "Refresh token expiration": an app whose publishing status is "Testing" is "issued a
// refresh token expiring in 7 days" (unless it asks only for the user's name, email address
// and profile). [native] Step 5 names `refresh_token_expires_in` ("the remaining lifetime of
// the refresh token in seconds") for refresh tokens of limited life (time-based access). The
// docs do not say whether a Testing app's responses carry it; this server sends it for them so
// stagepass's reading of a stated lifetime is exercised: stagepass warns only on what a server
// states, never on a guess.
const BASIC_SCOPES = new Set(['openid', 'email', 'profile',
  'https://www.googleapis.com/auth/userinfo.email', 'https://www.googleapis.com/auth/userinfo.profile']);
function testingLimited(scope) {
  return publishingStatus === 'testing' && scope.split(' ').some((s) => !BASIC_SCOPES.has(s));
}

async function token(req, res) {
  const form = await readForm(req);
  const auth = clientAuth(req, form);
  const grantType = form.get('grant_type');
  const record = (outcome) => stats.token_requests.push({ grant_type: grantType, client_auth: auth.method, outcome });
  const refuse = (status, error, description) => {
    record(error);
    return sendJson(res, status, { error, error_description: description });
  };
  if (auth.id !== CLIENT_ID) return refuse(401, 'invalid_client', 'The OAuth client was not found.');
  // [native] Step 5: client_secret is a required parameter for a Desktop app client. Google
  // answers its absence with invalid_request "client_secret is missing." and a wrong one
  // with invalid_client "Unauthorized".
  if (auth.secret === null) return refuse(400, 'invalid_request', 'client_secret is missing.');
  if (auth.secret !== clientSecret) return refuse(401, 'invalid_client', 'Unauthorized');

  if (grantType === 'authorization_code') {
    const grant = codes.get(form.get('code'));
    if (!grant || grant.expiresAt < now()) return refuse(400, 'invalid_grant', 'Malformed auth code.');
    codes.delete(form.get('code'));
    if (form.get('redirect_uri') !== grant.redirectUri) return refuse(400, 'redirect_uri_mismatch', 'Bad Request');
    // [native] Step 5: code_verifier, checked against Step 2's code_challenge (RFC 7636).
    if (grant.codeChallenge) {
      const verifier = form.get('code_verifier') || '';
      const derived = grant.codeChallengeMethod === 'S256'
        ? crypto.createHash('sha256').update(verifier).digest('base64url')
        : verifier;
      if (derived !== grant.codeChallenge) return refuse(400, 'invalid_grant', 'Invalid code verifier.');
    }
    const body = {
      access_token: accessToken(grant.sub),
      expires_in: ACCESS_TOKEN_TTL,
      scope: grant.scope,
      token_type: 'Bearer',
      id_token: await idToken(grant, grant.nonce),
    };
    if (grant.refresh) {
      const refresh = `1//${random(40)}`;
      const limited = testingLimited(grant.scope);
      refreshTokens.set(refresh, { sub: grant.sub, email: grant.email, scope: grant.scope, expiresAt: limited ? now() + SEVEN_DAYS - 1 : null });
      stats.refresh_tokens_issued += 1;
      body.refresh_token = refresh;
      if (limited) body.refresh_token_expires_in = SEVEN_DAYS - 1;
    }
    record(body.refresh_token ? 'tokens with a refresh token' : 'tokens without a refresh token');
    return sendJson(res, 200, body);
  }

  if (grantType === 'refresh_token') {
    const grant = refreshTokens.get(form.get('refresh_token'));
    if (!grant || (grant.expiresAt !== null && grant.expiresAt <= now())) {
      return refuse(400, 'invalid_grant', 'Token has been expired or revoked.');
    }
    // [native] "Refreshing an access token": the answer has a new access token (and, with
    // openid, an id_token) but no new refresh token: the one sent stays valid.
    const body = {
      access_token: accessToken(grant.sub),
      expires_in: ACCESS_TOKEN_TTL,
      scope: grant.scope,
      token_type: 'Bearer',
      id_token: await idToken(grant, null),
    };
    if (grant.expiresAt !== null) body.refresh_token_expires_in = grant.expiresAt - now();
    record('refreshed');
    return sendJson(res, 200, body);
  }
  return refuse(400, 'unsupported_grant_type', `Invalid grant_type: ${grantType}`);
}

// [native] "Revoking a token": POST token=… to the revocation endpoint; revoking a refresh
// token ends the grant. No client authentication needed.
async function revoke(req, res) {
  const form = await readForm(req);
  const tokenValue = form.get('token');
  if (refreshTokens.delete(tokenValue) || accessTokens.delete(tokenValue)) return sendJson(res, 200, {});
  return sendJson(res, 400, { error: 'invalid_token', error_description: 'Token expired or revoked' });
}

async function handle(req, res) {
  const url = new URL(req.url, issuer);
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /.well-known/openid-configuration':
      return sendJson(res, 200, discovery());
    case 'GET /oauth2/v3/certs':
      return sendJson(res, 200, { keys: [jwk] });
    case 'GET /o/oauth2/v2/auth':
      return authorize(res, url.searchParams);
    case 'POST /signin':
      return signIn(res, await readForm(req));
    case 'POST /consent':
      return consent(res, await readForm(req));
    case 'POST /token':
      return token(req, res);
    case 'POST /revoke':
      return revoke(req, res);
    // [device] "Allowed scopes" and client type: the device flow needs a client of type "TVs
    // and Limited Input devices"; a Desktop app client is refused.
    case 'POST /device/code':
      return sendJson(res, 401, { error: 'invalid_client', error_description: 'Invalid client type.' });
    case 'GET /v1/userinfo': {
      const bearer = (req.headers.authorization || '').replace(/^Bearer /i, '');
      const held = accessTokens.get(bearer);
      if (!held || held.expiresAt <= now()) return sendJson(res, 401, { error: 'invalid_token' });
      return sendJson(res, 200, { sub: held.sub });
    }
    case 'GET /test/stats':
      return sendJson(res, 200, { ...stats, publishing_status: publishingStatus });
    case 'POST /test/client-secret':
      clientSecret = url.searchParams.get('value') || fail('client-secret needs ?value=');
      return sendJson(res, 200, {});
    case 'POST /test/publishing-status':
      publishingStatus = url.searchParams.get('value') === 'testing' ? 'testing' : 'production';
      return sendJson(res, 200, {});
    default:
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('Not Found');
  }
}

const server = http.createServer(requestListener(NAME, handle));
await serve(server, {
  name: NAME,
  ready: (port) => {
    issuer = `http://127.0.0.1:${port}`;
    return { url: issuer };
  },
});
