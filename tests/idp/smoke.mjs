// Smoke test for the test IdP (server.mjs) and the scripted browser
// (browser / browser.mjs), without any stagepass code.
//
//   cd tests/idp && npm ci && node smoke.mjs
//
// Prints one line per check and ends with "N passed, N failed".

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVER = path.join(HERE, 'server.mjs');
const BROWSER = path.join(HERE, 'browser'); // the sh wrapper, as $BROWSER would be
const RESOURCE = 'https://backstage.test';
const SCOPE = 'openid email profile groups offline_access';
const CLIENT = 'stagepass-test';
const OTHER = 'stagepass-other';

let passed = 0;
let failed = 0;
const startTimes = [];

async function check(name, fn) {
  const t = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok   - ${name} (${Date.now() - t} ms)`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL - ${name}: ${err.stack || err}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- processes

function startServer(env = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [SERVER], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let done = false;
    const timer = setTimeout(() => {
      if (!done) {
        child.kill('SIGKILL');
        reject(new Error(`server did not print its issuer within 20 s\n${stderr}`));
      }
    }, 20_000);
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!done && stdout.includes('\n')) {
        done = true;
        clearTimeout(timer);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        startTimes.push(ms);
        const { issuer } = JSON.parse(stdout.slice(0, stdout.indexOf('\n')));
        const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
        resolve({
          issuer,
          ms,
          child,
          stdout: () => stdout,
          stderr: () => stderr,
          async stop() {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    child.once('exit', (code) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`server exited (${code}) before printing its issuer\n${stderr}`));
      }
    });
  });
}

function runBrowser(args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(BROWSER, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.once('exit', (code) => resolve({ code, stderr }));
  });
}

// Local redirect_uri listener on 127.0.0.1:<ephemeral>/callback.
async function startCallback() {
  const waiters = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('stagepass-test callback received\n');
    const w = waiters.shift();
    if (w) w(Object.fromEntries(url.searchParams));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    redirectUri: `http://127.0.0.1:${server.address().port}/callback`,
    next: () => new Promise((r) => waiters.push(r)),
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

// ---------------------------------------------------------------- OAuth helpers

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function pkce() {
  const verifier = b64url(crypto.randomBytes(32));
  const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
  return { verifier, challenge };
}

async function discover(issuer) {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  assert.equal(res.status, 200);
  return res.json();
}

async function postForm(url, fields) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(Object.entries(fields).filter(([, v]) => v !== undefined)).toString(),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

function decodeJwt(token) {
  const parts = token.split('.');
  assert.equal(parts.length, 3, `not a JWT: ${token.slice(0, 40)}...`);
  return {
    header: JSON.parse(Buffer.from(parts[0], 'base64url')),
    payload: JSON.parse(Buffer.from(parts[1], 'base64url')),
    parts,
  };
}

async function verifyJwt(token, meta) {
  const { header, payload, parts } = decodeJwt(token);
  assert.equal(header.alg, 'RS256');
  const jwks = await (await fetch(meta.jwks_uri)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `no JWKS key with kid ${header.kid}`);
  const ok = crypto.verify(
    'RSA-SHA256',
    Buffer.from(`${parts[0]}.${parts[1]}`),
    crypto.createPublicKey({ key: jwk, format: 'jwk' }),
    Buffer.from(parts[2], 'base64url'),
  );
  assert.ok(ok, 'JWT signature does not verify');
  assert.equal(payload.iss, meta.issuer);
  return { header, payload };
}

const isJwt = (t) => t.split('.').length === 3;

function authUrl(meta, { redirectUri, challenge, state, nonce, resource, scope = SCOPE, clientId = CLIENT }) {
  const u = new URL(meta.authorization_endpoint);
  const p = {
    client_id: clientId,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    resource,
  };
  for (const [k, v] of Object.entries(p)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}

// Runs the browser against an authorization URL, returns the callback query.
async function authorize(meta, cb, opts = {}, browserEnv = {}) {
  const { verifier, challenge } = pkce();
  const state = b64url(crypto.randomBytes(8));
  const nonce = b64url(crypto.randomBytes(8));
  const url = authUrl(meta, { redirectUri: cb.redirectUri, challenge, state, nonce, ...opts });
  const got = cb.next();
  const br = await runBrowser([url], browserEnv);
  if (br.code !== 0) throw new Error(`browser exited ${br.code}\n${br.stderr}`);
  const query = await Promise.race([got, sleep(5000).then(() => { throw new Error('no callback'); })]);
  assert.equal(query.state, state, 'state mismatch');
  assert.equal(query.iss, meta.issuer, 'iss in authorization response');
  assert.match(br.stderr, /browser: HTTP 200/, 'browser printed the final status');
  assert.match(br.stderr, /stagepass-test callback received/, 'browser printed the final body');
  return { query, verifier, nonce, redirectUri: cb.redirectUri };
}

async function exchange(meta, { query, verifier, redirectUri }, extra = {}) {
  return postForm(meta.token_endpoint, {
    grant_type: 'authorization_code',
    client_id: CLIENT,
    code: query.code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
    ...extra,
  });
}

const refresh = (meta, rt, extra = {}) => postForm(meta.token_endpoint, {
  grant_type: 'refresh_token', client_id: CLIENT, refresh_token: rt, ...extra,
});

const introspect = (meta, token) => postForm(meta.introspection_endpoint, { client_id: CLIENT, token });

async function deviceAuthorize(meta, extra = {}) {
  const res = await postForm(meta.device_authorization_endpoint, {
    client_id: CLIENT, scope: SCOPE, resource: RESOURCE, ...extra,
  });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

// Polls the token endpoint honouring `interval` (default 5 s, RFC 8628).
async function pollDevice(meta, da, maxMs = 60_000) {
  let interval = (da.interval ?? 5) * 1000;
  const deadline = Date.now() + maxMs;
  for (;;) {
    await sleep(interval);
    const res = await postForm(meta.token_endpoint, {
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      client_id: CLIENT,
      device_code: da.device_code,
    });
    if (res.status === 200) return res;
    if (res.json?.error === 'slow_down') interval += 5000;
    else if (res.json?.error !== 'authorization_pending') return res;
    if (Date.now() > deadline) throw new Error('device flow polling timed out');
  }
}

// ---------------------------------------------------------------- tests

async function main() {
  const t0 = Date.now();
  const idp = await startServer();
  const short = await startServer({ IDP_DEVICE_CODE_TTL: '2' });
  const strict = await startServer({ IDP_USE_GRANTED_RESOURCE: '0' });
  const cb = await startCallback();
  const meta = await discover(idp.issuer);

  await check('issuer line: http://127.0.0.1:PORT, no trailing slash', () => {
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(meta.issuer, idp.issuer);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    for (const s of SCOPE.split(' ')) assert.ok(meta.scopes_supported.includes(s), s);
    assert.ok(meta.device_authorization_endpoint && meta.revocation_endpoint && meta.introspection_endpoint);
  });

  // Device flows take >= 5 s each (polling interval): start them now, in
  // parallel with the authorization-code checks, and await them at the end.
  const deviceApprove = (async () => {
    const da = await deviceAuthorize(meta);
    const br = await runBrowser(['--device', da.verification_uri_complete]);
    return { da, br, res: await pollDevice(meta, da) };
  })();
  const deviceDeny = (async () => {
    const da = await deviceAuthorize(meta);
    const br = await runBrowser(['--device', da.verification_uri_complete], { STAGEPASS_TEST_CONSENT: 'deny' });
    return { da, br, res: await pollDevice(meta, da) };
  })();
  const deviceExpire = (async () => {
    const shortMeta = await discover(short.issuer);
    const da = await deviceAuthorize(shortMeta);
    return { da, res: await pollDevice(shortMeta, da) };
  })();
  deviceApprove.catch(() => {});
  deviceDeny.catch(() => {});
  deviceExpire.catch(() => {});

  // --- authorization code + PKCE + resource, refresh rotation, reuse detection
  let tokens;
  let rt1;
  let rt2;
  let rt3;
  await check('auth code flow (alice, resource): code at callback, token exchange', async () => {
    const flow = await authorize(meta, cb, { resource: RESOURCE });
    assert.ok(flow.query.code, JSON.stringify(flow.query));
    const res = await exchange(meta, flow, { resource: RESOURCE });
    assert.equal(res.status, 200, res.text);
    tokens = res.json;
    tokens.nonce = flow.nonce;
    assert.equal(tokens.token_type, 'Bearer');
    assert.equal(tokens.expires_in, 60);
    assert.ok(tokens.refresh_token, 'refresh_token issued');
    rt1 = tokens.refresh_token;
  });

  await check('id_token: signed, email + groups + profile claims', async () => {
    const { payload } = await verifyJwt(tokens.id_token, meta);
    assert.equal(payload.aud, CLIENT);
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.nonce, tokens.nonce);
    assert.equal(payload.email, 'alice@example.com');
    assert.equal(payload.email_verified, true);
    assert.equal(payload.name, 'Alice Example');
    assert.equal(payload.preferred_username, 'alice');
    assert.deepEqual(payload.groups, ['developers', 'platform']);
    assert.equal(payload.exp - payload.iat, 3600);
  });

  await check('access token: JWT, aud https://backstage.test, ttl 60', async () => {
    const { header, payload } = await verifyJwt(tokens.access_token, meta);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(payload.aud, RESOURCE);
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.client_id, CLIENT);
    assert.equal(payload.exp - payload.iat, 60);
    const scopes = new Set(payload.scope.split(' '));
    for (const s of ['openid', 'email', 'profile', 'groups']) assert.ok(scopes.has(s), payload.scope);
  });

  await check('refresh (with resource): rotated refresh token, JWT access token', async () => {
    const res = await refresh(meta, rt1, { resource: RESOURCE });
    assert.equal(res.status, 200, res.text);
    rt2 = res.json.refresh_token;
    assert.ok(rt2 && rt2 !== rt1, 'new refresh token differs');
    const { payload } = await verifyJwt(res.json.access_token, meta);
    assert.equal(payload.aud, RESOURCE);
    assert.ok(res.json.id_token, 'id_token on refresh');
    assert.equal(decodeJwt(res.json.id_token).payload.email, 'alice@example.com');
  });

  await check('refresh WITHOUT resource: still a JWT for the granted resource (useGrantedResource)', async () => {
    const res = await refresh(meta, rt2);
    assert.equal(res.status, 200, res.text);
    rt3 = res.json.refresh_token;
    assert.ok(rt3 && rt3 !== rt2);
    assert.equal(decodeJwt(res.json.access_token).payload.aud, RESOURCE);
    tokens.latestAccessToken = res.json.access_token;
  });

  await check('refresh token is client-bound: stagepass-other gets invalid_grant', async () => {
    const res = await postForm(meta.token_endpoint, {
      grant_type: 'refresh_token', client_id: OTHER, refresh_token: rt3,
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error, 'invalid_grant');
  });

  await check('introspection: refresh token active; JWT access tokens cannot be introspected', async () => {
    let res = await introspect(meta, rt3);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.active, true, res.text);
    assert.equal(res.json.sub, 'alice');
    res = await introspect(meta, tokens.latestAccessToken);
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error, 'unsupported_token_type');
  });

  await check('reuse of rotated refresh token: invalid_grant, whole grant revoked', async () => {
    const reuse = await refresh(meta, rt1, { resource: RESOURCE });
    assert.equal(reuse.status, 400, reuse.text);
    assert.equal(reuse.json.error, 'invalid_grant');
    const latest = await refresh(meta, rt3, { resource: RESOURCE });
    assert.equal(latest.status, 400, latest.text);
    assert.equal(latest.json.error, 'invalid_grant');
    const res = await introspect(meta, rt3);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.active, false, `still active after grant revocation: ${res.text}`);
  });

  await check('quirk: refresh with an ungranted resource -> invalid_target AND the refresh token is burnt', async () => {
    const flow = await authorize(meta, cb, { resource: RESOURCE });
    const res = await exchange(meta, flow, { resource: RESOURCE });
    assert.equal(res.status, 200, res.text);
    const bad = await refresh(meta, res.json.refresh_token, { resource: 'https://other.test' });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error, 'invalid_target');
    // oidc-provider rotated (consumed) the token before checking the resource:
    // the next use counts as reuse => invalid_grant + grant revoked.
    const again = await refresh(meta, res.json.refresh_token, { resource: RESOURCE });
    assert.equal(again.status, 400, again.text);
    assert.equal(again.json.error, 'invalid_grant');
  });

  await check('auth code flow without resource (bob): opaque access token, userinfo, refresh', async () => {
    const flow = await authorize(meta, cb, {}, { STAGEPASS_TEST_USER: 'bob' });
    const res = await exchange(meta, flow);
    assert.equal(res.status, 200, res.text);
    assert.ok(!isJwt(res.json.access_token), 'opaque access token');
    assert.equal(res.json.expires_in, 60);
    const { payload } = await verifyJwt(res.json.id_token, meta);
    assert.equal(payload.email, 'bob@example.com');
    assert.deepEqual(payload.groups, ['developers']);
    const ui = await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${res.json.access_token}` } });
    assert.equal(ui.status, 200);
    assert.deepEqual((await ui.json()).groups, ['developers']);
    const r = await refresh(meta, res.json.refresh_token);
    assert.equal(r.status, 200, r.text);
    assert.notEqual(r.json.refresh_token, res.json.refresh_token);
  });

  await check('revocation endpoint: revoked refresh token no longer works', async () => {
    const flow = await authorize(meta, cb, { resource: RESOURCE });
    const res = await exchange(meta, flow, { resource: RESOURCE });
    assert.equal(res.status, 200, res.text);
    const rv = await postForm(meta.revocation_endpoint, { client_id: CLIENT, token: res.json.refresh_token });
    assert.equal(rv.status, 200, rv.text);
    const r = await refresh(meta, res.json.refresh_token, { resource: RESOURCE });
    assert.equal(r.json.error, 'invalid_grant');
  });

  await check('consent denied: error=access_denied at the callback', async () => {
    const flow = await authorize(meta, cb, { resource: RESOURCE }, { STAGEPASS_TEST_CONSENT: 'deny' });
    assert.equal(flow.query.error, 'access_denied');
    assert.equal(flow.query.code, undefined);
  });

  await check('unknown login name: error=access_denied at the callback', async () => {
    const flow = await authorize(meta, cb, {}, { STAGEPASS_TEST_USER: 'mallory' });
    assert.equal(flow.query.error, 'access_denied');
  });

  await check('PKCE: code_verifier mismatch is invalid_grant; missing challenge is rejected', async () => {
    const flow = await authorize(meta, cb, { resource: RESOURCE });
    const bad = await exchange(meta, { ...flow, verifier: pkce().verifier }, { resource: RESOURCE });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error, 'invalid_grant');
    const u = new URL(authUrl(meta, { redirectUri: cb.redirectUri, state: 's' }));
    u.searchParams.delete('code_challenge_method');
    const res = await fetch(u, { redirect: 'manual' });
    assert.equal(res.status, 303);
    const loc = new URL(res.headers.get('location'));
    assert.equal(loc.searchParams.get('error'), 'invalid_request');
  });

  await check('quirks: unknown client / redirect_uri mismatch / unknown resource', async () => {
    const { challenge } = pkce();
    // unknown client_id at the authorization endpoint: 400 HTML error page, no redirect
    let res = await fetch(authUrl(meta, { redirectUri: cb.redirectUri, challenge, state: 's', clientId: 'nope' }), { redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /invalid_client/);
    // unknown client_id at the device authorization endpoint: 401 JSON invalid_client
    res = await fetch(meta.device_authorization_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'client_id=nope&scope=openid',
    });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error, 'invalid_client');
    // redirect_uri path mismatch: 400 HTML invalid_redirect_uri, no redirect
    res = await fetch(authUrl(meta, { redirectUri: cb.redirectUri.replace('/callback', '/other'), challenge, state: 's' }), { redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /invalid_redirect_uri/);
    // unregistered resource: redirected to the client with invalid_target
    res = await fetch(authUrl(meta, { redirectUri: cb.redirectUri, challenge, state: 's', resource: 'https://other.test' }), { redirect: 'manual' });
    assert.equal(res.status, 303);
    assert.equal(new URL(res.headers.get('location')).searchParams.get('error'), 'invalid_target');
  });

  await check('browser exits non-zero with the page on an unexpected page', async () => {
    const { challenge } = pkce();
    const br = await runBrowser([authUrl(meta, { redirectUri: cb.redirectUri, challenge, state: 's', clientId: 'nope' })]);
    assert.equal(br.code, 1, br.stderr);
    assert.match(br.stderr, /browser: ERROR: unexpected HTTP 400/);
    assert.match(br.stderr, /----- page -----[\s\S]*invalid_client/);
  });

  await check('strict mode (IDP_USE_GRANTED_RESOURCE=0): token endpoint needs resource again', async () => {
    const smeta = await discover(strict.issuer);
    const flow = await authorize(smeta, cb, { resource: RESOURCE });
    const res = await exchange(smeta, flow); // no resource
    assert.equal(res.status, 200, res.text);
    assert.ok(!isJwt(res.json.access_token), 'opaque without resource');
    const r1 = await refresh(smeta, res.json.refresh_token, { resource: RESOURCE });
    assert.equal(r1.status, 200, r1.text);
    assert.equal(decodeJwt(r1.json.access_token).payload.aud, RESOURCE);
    const r2 = await refresh(smeta, r1.json.refresh_token);
    assert.equal(r2.status, 200, r2.text);
    assert.ok(!isJwt(r2.json.access_token), 'opaque again without resource');
  });

  // --- device flow results
  await check('device flow: verification_uri_complete, browser --device, tokens after polling', async () => {
    const { da, br, res } = await deviceApprove;
    assert.ok(da.verification_uri_complete.includes(encodeURIComponent(da.user_code)) || da.verification_uri_complete.includes(da.user_code));
    assert.equal(da.interval, undefined, 'oidc-provider omits interval (client must default to 5 s)');
    assert.equal(da.expires_in, 600);
    assert.equal(br.code, 0, br.stderr);
    assert.match(br.stderr, /Sign-in Success/);
    assert.equal(res.status, 200, res.text);
    assert.equal(decodeJwt(res.json.access_token).payload.aud, RESOURCE);
    assert.equal(decodeJwt(res.json.id_token).payload.email, 'alice@example.com');
    assert.ok(res.json.refresh_token);
  });

  await check('device flow denied: access_denied at the token endpoint', async () => {
    const { br, res } = await deviceDeny;
    assert.equal(br.code, 0, br.stderr);
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error, 'access_denied');
  });

  await check('device flow with IDP_DEVICE_CODE_TTL=2: expired_token', async () => {
    const { da, res } = await deviceExpire;
    assert.equal(da.expires_in, 2);
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error, 'expired_token');
  });

  await cb.close();
  for (const [name, srv] of [['default', idp], ['short', short], ['strict', strict]]) {
    await check(`server (${name}) exits 0 on SIGTERM, stdout was exactly one JSON line`, async () => {
      const { code, signal } = await srv.stop();
      assert.equal(signal, null);
      assert.equal(code, 0, srv.stderr());
      assert.equal(srv.stdout(), `${JSON.stringify({ issuer: srv.issuer })}\n`);
    });
  }
  await check('server exits 0 on SIGINT', async () => {
    const s = await startServer();
    s.child.kill('SIGINT');
    const [code] = await new Promise((r) => s.child.once('exit', (...a) => r(a)));
    assert.equal(code, 0);
  });

  const st = startTimes.map((ms) => Math.round(ms));
  console.log(`server start (spawn -> issuer line): ${st.join(', ')} ms`);
  console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.log(`FAIL - smoke harness: ${err.stack || err}`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
