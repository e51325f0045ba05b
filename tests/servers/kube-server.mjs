// Test-only Kubernetes API endpoint: just enough of an API server for `kubectl get --raw /version`
// with a kubeconfig whose user runs an exec credential plugin. It checks the bearer token like
// an API server configured with --oidc-issuer-url / --oidc-client-id.
//
// Usage: ISSUER=http://127.0.0.1:N [KUBE_AUDIENCE=stagepass-test] [KUBE_CERT_DIR=DIR] \
//          node tests/servers/kube-server.mjs
// Ready: one line on stdout, {"url":"https://127.0.0.1:PORT","ca_file":"/tmp/…/cert.pem"};
// everything else goes to stderr. The certificate is self-signed for IP 127.0.0.1, made with the
// openssl CLI at start into KUBE_CERT_DIR, or else a temporary directory removed on exit: put
// `ca_file` in the kubeconfig's `certificate-authority`.
// Credentials: `Authorization: Bearer JWT`, checked against the IdP's JWKS, `iss`, `exp` and
// `aud` = KUBE_AUDIENCE (default: the test client id, i.e. the id_token's audience). Otherwise
// 401 with a Kubernetes `Status` body, as a real API server answers.
// Test control (no credentials needed): GET /test/stats -> {"accepted","rejected","anonymous","errors"}
// TEST_SERVER_DEBUG=1 logs every request to stderr.
// Stops on SIGTERM/SIGINT, and when stdin closes if stdin is a pipe (hold it from the test).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failer, requestListener, sendJson, serve, tokenChecker } from './common.mjs';

const NAME = 'kube-server';
const fail = failer(NAME);
const ISSUER = process.env.ISSUER || fail('ISSUER is required');
const AUDIENCE = process.env.KUBE_AUDIENCE || 'stagepass-test';

const stats = { accepted: 0, rejected: 0, anonymous: 0, errors: {} };
const tokens = await tokenChecker({ name: NAME, issuer: ISSUER, audience: AUDIENCE, stats });

// A throwaway certificate per process: nothing to check in, nothing that outlives the test.
// kubectl (Go) ignores the CN, so the IP must be in subjectAltName.
// KUBE_CERT_DIR (e.g. the test's own temp dir) is left in place; a temp dir of our own is
// removed on exit, which a SIGKILL skips.
const ownDir = !process.env.KUBE_CERT_DIR;
const dir = process.env.KUBE_CERT_DIR || mkdtempSync(join(tmpdir(), 'kube-server-'));
const certFile = join(dir, 'cert.pem');
const keyFile = join(dir, 'key.pem');
try {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
} catch (err) {
  if (ownDir) rmSync(dir, { recursive: true, force: true });
  fail(`openssl could not make a certificate: ${err.stderr ?? err.message}`);
}

function status(code, reason, message) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

// Returns the token's claims, or null after counting why it was refused. Bearer only, as the
// API server: anything else counts as no credentials.
async function authenticate(header) {
  const match = /^Bearer\s+(\S+)$/i.exec(header || '');
  if (!match) {
    stats.anonymous += 1;
    return null;
  }
  const payload = await tokens.verify(match[1], 'bearer');
  if (payload) stats.accepted += 1;
  return payload;
}

function routes(path) {
  switch (path) {
    case '/version':
      return {
        major: '1', minor: '30', gitVersion: 'v1.30.0-stagepass-test', gitCommit: '0000000000000000000000000000000000000000',
        gitTreeState: 'clean', buildDate: '2024-04-17T00:00:00Z', goVersion: 'go1.22.2', compiler: 'gc', platform: 'linux/amd64',
      };
    // What kubectl's discovery asks for before most commands (not for `get --raw`).
    case '/api':
      return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${server.address().port}` }] };
    case '/apis':
      return { kind: 'APIGroupList', apiVersion: 'v1', groups: [] };
    default:
      return undefined;
  }
}

async function handle(req, res) {
  const json = (code, body) => sendJson(res, code, body);
  const url = new URL(req.url, 'https://127.0.0.1');
  if (url.pathname === '/test/stats') return json(200, stats);
  req.resume();
  const claims = await authenticate(req.headers.authorization);
  if (!claims) return json(401, status(401, 'Unauthorized', 'Unauthorized'));
  const body = req.method === 'GET' ? routes(url.pathname) : undefined;
  if (!body) return json(404, status(404, 'NotFound', `the server could not find the requested resource (${req.method} ${url.pathname})`));
  return json(200, body);
}

const server = https.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, requestListener(NAME, handle));
await serve(server, {
  name: NAME,
  ready: (port) => ({ url: `https://127.0.0.1:${port}`, ca_file: certFile }),
  onExit: () => {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  },
});
console.error(`${NAME}: audience ${AUDIENCE}`);
