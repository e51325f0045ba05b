// Test-only git smart-HTTP server: the real `git http-backend` (CGI) behind a gate that accepts
// only a valid access token from the test IdP, like a forge that takes OAuth tokens.
//
// Usage: GIT_PROJECT_ROOT=DIR ISSUER=http://127.0.0.1:N [AUDIENCE=https://backstage.test] \
//          node tests/servers/git-server.mjs
// Ready: one line on stdout, {"url":"http://127.0.0.1:PORT"}; everything else goes to stderr.
// Repositories: DIR/NAME.git (bare) is served at URL/NAME.git; pushes are allowed.
// Credentials: `Authorization: Basic base64(ANY:TOKEN)` or `Authorization: Bearer TOKEN`,
// TOKEN a JWT checked against the IdP's JWKS, `iss`, `aud` and `exp`. Anything else gets 401
// with `WWW-Authenticate: Basic realm="stagepass-test"`, which makes git ask its helpers.
// Test controls (no credentials needed):
//   GET  /test/stats            {"accepted","rejected","anonymous","bearer","basic","revoked","errors"}
//        accepted/bearer/basic: requests let through; anonymous: requests with no credentials
//        (git's normal first round trip); rejected: requests whose token was refused, with
//        reasons in errors {"expired","bad_aud","bad_iss","invalid","revoked": count}.
//   POST /test/reject-next?n=N  revoke the next N distinct valid tokens presented: 401 for them
//        now and on every later use, like a server that revoked them.
// TEST_SERVER_DEBUG=1 logs every request to stderr.
// Stops on SIGTERM/SIGINT, and when stdin closes if stdin is a pipe (hold it from the test).
import * as http from 'node:http';
import { credentials, failer, requestListener, sendJson, serve, tokenChecker } from './common.mjs';
import { gitBackend } from './git-backend.mjs';

const NAME = 'git-server';
const fail = failer(NAME);
const PROJECT_ROOT = process.env.GIT_PROJECT_ROOT || fail('GIT_PROJECT_ROOT is required');
const ISSUER = process.env.ISSUER || fail('ISSUER is required');
const AUDIENCE = process.env.AUDIENCE || 'https://backstage.test';

const stats = { accepted: 0, rejected: 0, anonymous: 0, bearer: 0, basic: 0, revoked: 0, errors: {} };
const tokens = await tokenChecker({ name: NAME, issuer: ISSUER, audience: AUDIENCE, stats });

const runBackend = gitBackend(NAME, PROJECT_ROOT);

let revokeNext = 0;
// A server that revoked a token keeps refusing it: a client that retries with the same token
// must fail again, so only a real refresh gets through.
const revokedTokens = new Set();

// Returns the token's claims, or null after counting why it was refused.
async function authenticate(creds) {
  if (revokedTokens.has(creds.token)) return tokens.refuse(creds.scheme, 'revoked');
  const payload = await tokens.verify(creds.token, creds.scheme);
  if (!payload) return null;
  if (revokeNext > 0) {
    revokeNext -= 1;
    revokedTokens.add(creds.token);
    stats.revoked += 1;
    return tokens.refuse(creds.scheme, 'revoked');
  }
  stats.accepted += 1;
  stats[creds.scheme] += 1;
  return payload;
}

function challenge(res) {
  res.writeHead(401, { 'www-authenticate': 'Basic realm="stagepass-test"', 'content-type': 'text/plain' });
  res.end('authentication required\n');
}

function testControl(req, res, url) {
  const json = (status, body) => sendJson(res, status, body);
  if (req.method === 'GET' && url.pathname === '/test/stats') return json(200, stats);
  if (req.method === 'POST' && url.pathname === '/test/reject-next') {
    const n = Number(url.searchParams.get('n') ?? '1');
    if (!Number.isInteger(n) || n < 0) return json(400, { error: 'n must be a non-negative integer' });
    revokeNext = n;
    return json(200, { reject_next: n });
  }
  return json(404, { error: 'unknown test control' });
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname.startsWith('/test/')) return testControl(req, res, url);
  const creds = credentials(req.headers.authorization);
  if (!creds) {
    // The normal first round trip of git: it tries without credentials, then asks a helper.
    stats.anonymous += 1;
    req.resume();
    return challenge(res);
  }
  const claims = await authenticate(creds);
  if (!claims) {
    req.resume();
    return challenge(res);
  }
  runBackend(req, res, url, creds.user || String(claims.sub ?? 'token'));
}

const server = http.createServer(requestListener(NAME, handle));
await serve(server, { name: NAME, ready: (port) => ({ url: `http://127.0.0.1:${port}` }) });
console.error(`${NAME}: serving ${PROJECT_ROOT}, audience ${AUDIENCE}`);
