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
import { spawn, execFileSync } from 'node:child_process';
import * as http from 'node:http';
import { join } from 'node:path';
import { credentials, failer, requestListener, sendJson, serve, tokenChecker } from './common.mjs';

const NAME = 'git-server';
const fail = failer(NAME);
const PROJECT_ROOT = process.env.GIT_PROJECT_ROOT || fail('GIT_PROJECT_ROOT is required');
const ISSUER = process.env.ISSUER || fail('ISSUER is required');
const AUDIENCE = process.env.AUDIENCE || 'https://backstage.test';

const stats = { accepted: 0, rejected: 0, anonymous: 0, bearer: 0, basic: 0, revoked: 0, errors: {} };
const tokens = await tokenChecker({ name: NAME, issuer: ISSUER, audience: AUDIENCE, stats });

const backend = join(execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim(), 'git-http-backend');

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

// Runs git http-backend for one request, streaming both bodies (pushes can be large).
function runBackend(req, res, url, user) {
  const env = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: PROJECT_ROOT,
    GIT_HTTP_EXPORT_ALL: '1',
    // http-backend enables receive-pack (push) only for an authenticated REMOTE_USER.
    REMOTE_USER: user,
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    REQUEST_METHOD: req.method,
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    // git http-backend inflates gzip request bodies itself.
    HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
    // Protocol v2 is negotiated through this header (Apache does the same with SetEnvIf).
    GIT_PROTOCOL: req.headers['git-protocol'] ?? '',
  };
  // Without CONTENT_LENGTH (chunked pushes), http-backend reads the body to EOF.
  if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length'];
  const cgi = spawn(backend, [], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  cgi.on('error', (err) => {
    console.error(`${NAME}: cannot run ${backend}: ${err.message}`);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
  cgi.stdin.on('error', () => {}); // the CGI may exit before reading everything (e.g. an error)
  req.pipe(cgi.stdin);

  // CGI output: header lines, a blank line, then the body, which is streamed as it comes.
  let head = Buffer.alloc(0);
  let headerDone = false;
  cgi.stdout.on('data', (chunk) => {
    if (headerDone) {
      if (!res.write(chunk)) {
        cgi.stdout.pause();
        res.once('drain', () => cgi.stdout.resume());
      }
      return;
    }
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf('\r\n\r\n');
    const lf = head.indexOf('\n\n');
    const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
    if (end < 0) return;
    const sep = end === crlf ? 4 : 2;
    let status = 200;
    const headers = {};
    for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'status') status = parseInt(value, 10);
      else headers[name] = value;
    }
    headerDone = true;
    res.writeHead(status, headers);
    const rest = head.subarray(end + sep);
    if (rest.length) res.write(rest);
  });
  cgi.stdout.on('end', () => {
    if (!headerDone) res.writeHead(502);
    res.end();
  });
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
