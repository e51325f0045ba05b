#!/usr/bin/env node
// Scripted consent "browser" for the test Backstage (server.js): plays the Backstage app's
// consent page (/oauth2/authorize/<session>), which the test backend does not serve.
//
//   node browser.js AUTHORIZATION_URL | file:///…/REDIRECT_PAGE.html
//   (a file:// page, how stagepass opens browsers, is read and its meta refresh followed)
//
// 1. Requests the authorization URL; Backstage answers with a redirect to the app's consent
//    page for a new session (or, on an error, straight to the client's redirect URI).
// 2. Signs the test user in through the oauth2Proxy provider (X-Forwarded-User) and takes
//    the Backstage user token from its answer, as the app would hold it.
// 3. GET /api/auth/v1/sessions/<id>, then POST .../approve with that token.
// 4. Follows the returned redirect to the client's loopback listener.
//
// Environment:
//   STAGEPASS_TEST_USER  catalog user name to sign in as (default "alice")
//
// Exit status: 0 when the client's redirect URI answered; 1 when a step failed (the
// answer is printed to stderr); 2 on bad usage.

'use strict';

const USER = process.env.STAGEPASS_TEST_USER || 'alice';
const TIMEOUT_MS = 15_000;

function log(message) {
  process.stderr.write(`backstage-browser: ${message}\n`);
}

async function request(url, options = {}) {
  return fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS), ...options });
}

async function expectJson(response, what) {
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`${what}: HTTP ${response.status}: ${text.slice(0, 2048)}`);
  }
  return JSON.parse(text);
}

async function finish(url) {
  const response = await request(url);
  log(`redirect URI answered HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`);
}

// stagepass hands the browser a file:// URL of a private page that redirects (meta refresh)
// to the real address, so the address never sits in argv: read it as a browser would.
function followRedirectPage(arg) {
  const url = new URL(arg);
  if (url.protocol !== 'file:') return arg;
  const page = require('node:fs').readFileSync(require('node:url').fileURLToPath(url), 'utf8');
  const target = /<meta\b[^>]*http-equiv="refresh"[^>]*content="\d+;url=([^"]*)"/i.exec(page);
  if (!target) throw new Error(`no meta refresh in ${arg}`);
  const decoded = target[1]
    .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
  log(`redirect page ${url.href}`);
  return decoded;
}

async function main() {
  if (!process.argv[2]) {
    log('usage: browser.js AUTHORIZATION_URL | file:///…/REDIRECT_PAGE.html');
    process.exit(2);
  }
  const authorizationUrl = followRedirectPage(process.argv[2]);
  const backend = new URL(authorizationUrl).origin;
  const authorize = await request(authorizationUrl);
  const location = authorize.headers.get('location');
  if (authorize.status !== 302 || !location) {
    throw new Error(`authorize: expected a redirect, got HTTP ${authorize.status}: ${await authorize.text()}`);
  }
  const consent = location.match(/\/oauth2\/authorize\/([^/?#]+)/);
  if (!consent) {
    // An error sent back to the client: deliver it, as a browser would.
    log(`authorize redirected to the client: ${location}`);
    await finish(location);
    return;
  }
  const sessionId = decodeURIComponent(consent[1]);

  const signIn = await expectJson(
    await request(`${backend}/api/auth/oauth2Proxy/refresh`, {
      headers: { 'x-forwarded-user': USER, 'x-forwarded-email': `${USER}@example.test` },
    }),
    'oauth2Proxy sign-in',
  );
  const userToken = signIn.backstageIdentity?.token;
  if (!userToken) throw new Error(`oauth2Proxy sign-in gave no token: ${JSON.stringify(signIn)}`);

  const session = await expectJson(
    await request(`${backend}/api/auth/v1/sessions/${encodeURIComponent(sessionId)}`, {
      headers: { authorization: `Bearer ${userToken}` },
    }),
    'session',
  );
  log(`consenting for ${USER} to ${session.clientName} (${session.clientId})`);
  const approved = await expectJson(
    await request(`${backend}/api/auth/v1/sessions/${encodeURIComponent(sessionId)}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${userToken}`, 'content-type': 'application/json' },
      body: '{}',
    }),
    'approve',
  );
  await finish(approved.redirectUrl);
}

main().catch((err) => {
  log(err.message);
  process.exit(1);
});
