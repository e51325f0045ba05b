// Test-only stand-in for oauth2-proxy in front of Backstage (oauth2-proxy itself is a Go binary
// from GitHub releases, which this machine cannot fetch). It does what a deployment with
// `--skip-jwt-bearer-tokens --pass-user-headers` does for an API client: it verifies the IdP's
// JWT from `Authorization: Bearer` (signature against the IdP's JWKS, `iss`, `aud`, `exp`),
// drops every identity header the caller sent, sets `X-Forwarded-User` (the `sub` claim, like
// `--user-id-claim=sub`) and `X-Forwarded-Email`, and forwards the request to Backstage.
// A request without a valid bearer gets 401 and never reaches Backstage.
//
// Usage: ISSUER=http://127.0.0.1:N UPSTREAM=http://127.0.0.1:M [AUDIENCE=https://backstage.test]
//        node tests/servers/oauth2-proxy.mjs
// Ready: one line on stdout, {"url":"http://127.0.0.1:PORT"}; everything else goes to stderr.
// Test control (no credentials needed): GET /test/stats -> {"accepted","rejected","anonymous","errors"}
import * as http from 'node:http';
import { credentials, failer, requestListener, sendJson, serve, tokenChecker } from './common.mjs';

const NAME = 'oauth2-proxy';
const fail = failer(NAME);
const ISSUER = process.env.ISSUER || fail('ISSUER is required');
const UPSTREAM = new URL(process.env.UPSTREAM || fail('UPSTREAM is required'));
const AUDIENCE = process.env.AUDIENCE || 'https://backstage.test';

const stats = { accepted: 0, rejected: 0, anonymous: 0, errors: {} };
const tokens = await tokenChecker({ name: NAME, issuer: ISSUER, audience: AUDIENCE, stats });

// What oauth2-proxy owns: a caller may never set these (Backstage's oauth2Proxy provider
// trusts them without checking).
const IDENTITY = /^(authorization|cookie|x-forwarded-.*|x-auth-request-.*|x-oauth2-proxy-.*|gap-auth)$/i;

const server = http.createServer(requestListener(NAME, async (req, res) => {
  if (req.url === '/test/stats') return sendJson(res, 200, stats);
  const presented = credentials(req.headers.authorization);
  if (presented?.scheme !== 'bearer') {
    stats.anonymous += 1;
    return sendJson(res, 401, { error: 'oauth2-proxy: a bearer token is required' });
  }
  const claims = await tokens.verify(presented.token, 'bearer');
  if (!claims) return sendJson(res, 401, { error: 'oauth2-proxy: token refused' });
  stats.accepted += 1;

  const headers = Object.fromEntries(
    Object.entries(req.headers).filter(([name]) => !IDENTITY.test(name) && name !== 'host'),
  );
  headers['x-forwarded-user'] = claims.sub;
  if (claims.email) headers['x-forwarded-email'] = claims.email;
  const upstream = http.request(
    { host: UPSTREAM.hostname, port: UPSTREAM.port, method: req.method, path: req.url, headers },
    (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', (err) => sendJson(res, 502, { error: `oauth2-proxy: ${err.message}` }));
  req.pipe(upstream);
}));

await serve(server, { name: NAME, ready: (port) => ({ url: `http://127.0.0.1:${port}` }) });
