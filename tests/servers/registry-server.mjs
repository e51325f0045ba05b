// Test-only Docker Registry (HTTP API v2), read-only, with one image: team/app:1.0. Just enough
// for `skopeo inspect --tls-verify=false docker://127.0.0.1:PORT/team/app:1.0`, so a real
// daemonless client exercises the docker credential helper protocol against a registry that
// takes OAuth access tokens (like registries that accept a token as the Basic password).
//
// Usage: ISSUER=http://127.0.0.1:N [AUDIENCE=https://backstage.test] node tests/servers/registry-server.mjs
// Ready: one line on stdout, {"url":"http://127.0.0.1:PORT"}; everything else goes to stderr.
// Credentials: `Authorization: Basic base64(ANY:TOKEN)`, TOKEN a JWT checked against the IdP's
// JWKS, `iss`, `aud` and `exp` (Bearer is accepted too). Otherwise 401 with
// `WWW-Authenticate: Basic realm="stagepass-registry"` on every /v2/ path.
// Test control (no credentials needed): GET /test/stats -> {"accepted","rejected","anonymous","bearer","basic","errors"}
// TEST_SERVER_DEBUG=1 logs every request to stderr.
// Stops on SIGTERM/SIGINT, and when stdin closes if stdin is a pipe (hold it from the test).
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import { gzipSync } from 'node:zlib';
import { credentials, failer, requestListener, sendJson, serve, tokenChecker } from './common.mjs';

const NAME = 'registry-server';
const fail = failer(NAME);
const ISSUER = process.env.ISSUER || fail('ISSUER is required');
const AUDIENCE = process.env.AUDIENCE || 'https://backstage.test';

const stats = { accepted: 0, rejected: 0, anonymous: 0, bearer: 0, basic: 0, errors: {} };
const tokens = await tokenChecker({ name: NAME, issuer: ISSUER, audience: AUDIENCE, stats });

// The image: an empty layer (an empty tar, gzipped), its config and a schema 2 manifest.
// Digests are computed, so clients that verify them (skopeo does) are satisfied.
const REPO = 'team/app';
const TAG = '1.0';
const digest = (buf) => `sha256:${createHash('sha256').update(buf).digest('hex')}`;
const layerTar = Buffer.alloc(1024); // end-of-archive marker: two zero blocks
const layer = gzipSync(layerTar);
const config = Buffer.from(JSON.stringify({
  architecture: 'amd64',
  os: 'linux',
  created: '2024-01-01T00:00:00Z',
  config: { Labels: { 'org.opencontainers.image.title': 'stagepass-test' } },
  rootfs: { type: 'layers', diff_ids: [digest(layerTar)] },
  history: [{ created: '2024-01-01T00:00:00Z', created_by: 'stagepass test registry' }],
}));
const MANIFEST_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2,
  mediaType: MANIFEST_TYPE,
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: digest(config) },
  layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: digest(layer) }],
}));
const blobs = new Map([[digest(config), config], [digest(layer), layer]]);

// True when the request carries a valid token; counts the outcome either way.
async function authenticate(header) {
  const creds = credentials(header);
  if (!creds) {
    stats.anonymous += 1;
    return false;
  }
  if (!(await tokens.verify(creds.token, creds.scheme))) return false;
  stats.accepted += 1;
  stats[creds.scheme] += 1;
  return true;
}

// Registry errors have a fixed JSON shape (distribution spec), which clients print.
function error(res, status, code, message, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0', ...headers });
  res.end(`${JSON.stringify({ errors: [{ code, message, detail: null }] })}\n`);
}

function send(req, res, body, type, extra = {}) {
  res.writeHead(200, {
    'content-type': type,
    'content-length': body.length,
    'docker-distribution-api-version': 'registry/2.0',
    ...extra,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const path = url.pathname;
  req.resume();
  if (path === '/test/stats') return sendJson(res, 200, stats);
  if (!path.startsWith('/v2/')) return error(res, 404, 'NOT_FOUND', 'not a registry path');
  if (!(await authenticate(req.headers.authorization))) {
    return error(res, 401, 'UNAUTHORIZED', 'authentication required', {
      'www-authenticate': 'Basic realm="stagepass-registry"',
    });
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return error(res, 405, 'UNSUPPORTED', 'read-only registry');
  if (path === '/v2/') return send(req, res, Buffer.from('{}'), 'application/json');
  const prefix = `/v2/${REPO}/`;
  if (!path.startsWith(prefix)) return error(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
  const rest = path.slice(prefix.length);
  if (rest === 'tags/list') return send(req, res, Buffer.from(JSON.stringify({ name: REPO, tags: [TAG] })), 'application/json');
  if (rest === `manifests/${TAG}` || rest === `manifests/${digest(manifest)}`) {
    return send(req, res, manifest, MANIFEST_TYPE, { 'docker-content-digest': digest(manifest) });
  }
  if (rest.startsWith('manifests/')) return error(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
  const blob = rest.startsWith('blobs/') ? blobs.get(rest.slice('blobs/'.length)) : undefined;
  if (blob) return send(req, res, blob, 'application/octet-stream', { 'docker-content-digest': rest.slice('blobs/'.length) });
  return error(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry');
}

const server = http.createServer(requestListener(NAME, handle));
await serve(server, { name: NAME, ready: (port) => ({ url: `http://127.0.0.1:${port}` }) });
console.error(`${NAME}: serving ${REPO}:${TAG}, audience ${AUDIENCE}`);
