// What the three test servers (git-server, kube-server, registry-server) must do alike, so that
// tests/e2e/support's TestServer can start, read and stop any of them the same way. Each server
// passes its name, which starts every stderr line, so a failing test's output says who spoke.
import { createRequire } from 'node:module';
import { fstatSync } from 'node:fs';

// TEST_SERVER_DEBUG=1 logs every request to stderr.
export const DEBUG = !!process.env.TEST_SERVER_DEBUG;

// fail(msg): the message on stderr and exit status 2, before any ready line, so a test that
// waits for the ready line sees a failed start (missing variable, IdP unreachable) at once.
export function failer(name) {
  return (msg) => {
    console.error(`${name}: ${msg}`);
    process.exit(2);
  };
}

// Loads the IdP's keys now and returns {verify, refuse}; exits through fail() when the IdP
// cannot be read. `stats` is the server's /test/stats object: refusals are counted in
// stats.rejected and stats.errors[why], with why one of the short reasons the tests assert on
// (expired, bad_aud, bad_iss, invalid; git-server adds revoked). Accepting is the caller's to
// count, since git-server may still revoke a token that verified.
export async function tokenChecker({ name, issuer, audience, stats }) {
  const fail = failer(name);
  // jose comes with the test IdP's oidc-provider: no install of our own.
  const require = createRequire(new URL('../idp/package.json', import.meta.url));
  const { createRemoteJWKSet, jwtVerify } = await import(require.resolve('jose'));

  let jwks;
  try {
    const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
    await jwks.reload(); // now, so the first client request does not pay for the JWKS fetch
  } catch (err) {
    fail(`cannot read the IdP's keys at ${issuer}: ${err.cause?.message ?? err.message}`);
  }

  // Counts a refused token and says why on stderr; returns null, the "no claims" answer.
  const refuse = (scheme, why) => {
    stats.rejected += 1;
    stats.errors[why] = (stats.errors[why] ?? 0) + 1;
    console.error(`${name}: 401, ${scheme} token refused: ${why}`);
    return null;
  };

  // Returns the token's claims (iss, aud, exp and signature checked), or null after refuse().
  const verify = async (token, scheme) => {
    try {
      const { payload } = await jwtVerify(token, jwks, { issuer, audience });
      return payload;
    } catch (err) {
      if (err.code === 'ERR_JWT_EXPIRED') return refuse(scheme, 'expired');
      if (err.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') return refuse(scheme, `bad_${err.claim}`);
      return refuse(scheme, 'invalid');
    }
  };

  return { verify, refuse };
}

// The Authorization header as {scheme: 'bearer'|'basic', token, user?}, or null when the
// request carries no usable credentials. Basic carries the token as its password (the user is
// anything), which is how git and docker credential helpers hand tokens over.
export function credentials(header) {
  const [scheme, value] = (header || '').split(/\s+/, 2);
  if (!value) return null;
  if (/^bearer$/i.test(scheme)) return { scheme: 'bearer', token: value };
  if (!/^basic$/i.test(scheme)) return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { scheme: 'basic', user: decoded.slice(0, colon), token: decoded.slice(colon + 1) };
}

// A JSON body and a newline (readable with curl, parsed by the tests).
export function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

// The request listener for http(s).createServer: logs the request when DEBUG, and turns an
// exception in the async handler into a 500 (and a stderr line) instead of a hung client or a
// crashed server.
export function requestListener(name, handle) {
  return (req, res) => {
    if (DEBUG) console.error(`${name}: ${req.method} ${req.url}`);
    handle(req, res).catch((err) => {
      console.error(`${name}: internal error`, err);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };
}

// Wires the shutdown, listens on 127.0.0.1 at a free port and prints the ready line:
// ready(port), as one JSON line on stdout, the only thing a server writes there.
// The server stops on SIGTERM/SIGINT, and when stdin closes if stdin is a pipe: the test holds
// that pipe, so a test that dies without a chance to kill its servers takes them along.
// onExit runs just before exiting (kube-server removes its certificate directory).
export async function serve(server, { name, ready, onExit = () => {} }) {
  let stopping = false;
  const shutdown = (why) => {
    if (stopping) return;
    stopping = true;
    console.error(`${name}: ${why}, shutting down`);
    const exit = () => {
      onExit();
      process.exit(0);
    };
    server.close(exit);
    server.closeAllConnections?.();
    setTimeout(exit, 2000).unref(); // a client that keeps its connection must not keep us
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // Only a pipe or socket counts: /dev/null or a terminal would end at once or never.
  const stdin = fstatSync(0);
  if (stdin.isFIFO() || stdin.isSocket()) {
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin closed'));
    process.stdin.resume();
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  process.stdout.write(`${JSON.stringify(ready(server.address().port))}\n`);
}
