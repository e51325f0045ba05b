// Test-only real Backstage backend for stagepass end-to-end tests: the auth plugin (with its
// OAuth 2.0 authorization server, client-ID metadata documents and rotating refresh tokens),
// the oauth2Proxy sign-in provider (used by the scripted consent browser only), the
// catalog, on in-memory better-sqlite3, and the MCP actions plugin
// (@backstage/plugin-mcp-actions-backend, at /api/mcp-actions/v1) serving the actions of the
// catalog and of a small test plugin (below). Plain JavaScript, no frontend.
//
// Usage: NODE_ENV=development node server.js
//   (development: Backstage refuses http:// client-ID documents otherwise)
//
// Environment:
//   BACKSTAGE_PORT          port to listen on (default: a free one)
//   BACKSTAGE_TOKEN_TTL     lifetime of user tokens in seconds. Backstage clamps
//                           auth.backstageTokenExpiration to 10 min..24 h and always answers
//                           expires_in 3600; a shorter TTL lets the expiry tests run in
//                           seconds instead of minutes. Default: the config's 10 minutes.
//
// Once the catalog holds the test users, prints exactly one line on stdout:
//   {"url":"http://127.0.0.1:PORT","harness_token":"..."}
// harness_token is a static external-access token for the test harness (a service
// principal, not a user). Everything else goes to stderr.
//
// Test endpoints (this file's, not Backstage's):
//   GET /test/stats   {"token": {"authorization_code": N, "refresh_token": N}, "revoke": N,
//                      "actions": {"whoami": [USER_REF...], "write": N}, "mcp": N}
//                     `mcp` counts the POSTs that reached the MCP endpoint (/api/mcp-actions/v1).
//                     `actions` counts what reached the test plugin's actions, on
//                     Backstage's side: the users `stagepass-test.whoami` (read-only) saw,
//                     and the calls of `stagepass-test.record-write` (a write action).
//   POST /test/leave?user=NAME
//                     the user leaves the organisation: removed from the catalog's source
//                     file and their User entity deleted (it would come back from the file
//                     otherwise). Answers once the catalog no longer has it.
//
// NOT FOR PRODUCTION: the oauth2Proxy provider trusts X-Forwarded-User from anyone.

'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

// stdout carries the single ready line; Backstage's logger writes to stdout too.
const writeStdout = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);

// Backstage finds its packages from the working directory's package.json.
process.chdir(__dirname);

if (process.env.NODE_ENV !== 'development') {
  console.error('backstage: run with NODE_ENV=development (http client-ID documents)');
  process.exit(2);
}

const ttl = process.env.BACKSTAGE_TOKEN_TTL;
if (ttl) {
  // The auth plugin reads the lifetime through this module's export at start-up.
  const module = require(path.join(
    __dirname,
    'node_modules/@backstage/plugin-auth-backend/dist/service/readTokenExpiration.cjs.js',
  ));
  module.readBackstageTokenExpiration = () => Number(ttl);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const stats = { token: {}, revoke: 0, actions: { whoami: [], write: 0 }, mcp: 0 };

// A test plugin with one read action and one write action, registered through the real
// actions registry; the MCP actions plugin serves them as the tools `stagepass-test.whoami`
// and `stagepass-test.record-write`.
function testActionsPlugin() {
  const { createBackendPlugin } = require('@backstage/backend-plugin-api');
  const { actionsRegistryServiceRef } = require('@backstage/backend-plugin-api/alpha');
  return createBackendPlugin({
    pluginId: 'stagepass-test',
    register(env) {
      env.registerInit({
        deps: { actionsRegistry: actionsRegistryServiceRef },
        async init({ actionsRegistry }) {
          actionsRegistry.register({
            name: 'whoami',
            title: 'Who am I',
            description: 'Answers with the user entity ref Backstage sees for the caller.',
            attributes: { readOnly: true, destructive: false, idempotent: true },
            schema: {
              input: (z) => z.object({}),
              output: (z) => z.object({ user: z.string() }),
            },
            action: async ({ credentials }) => {
              const user = credentials.principal?.userEntityRef ?? `not a user: ${credentials.principal?.type}`;
              stats.actions.whoami.push(user);
              return { output: { user } };
            },
          });
          actionsRegistry.register({
            name: 'record-write',
            title: 'Record a write',
            description: 'A write action: counts its calls.',
            attributes: { readOnly: false, destructive: true, idempotent: false },
            schema: {
              input: (z) => z.object({}),
              output: (z) => z.object({ writes: z.number() }),
            },
            action: async () => {
              stats.actions.write += 1;
              return { output: { writes: stats.actions.write } };
            },
          });
        },
      });
    },
  });
}

async function leave(url, harnessToken, catalogFile, user) {
  const documents = fs.readFileSync(catalogFile, 'utf8').split(/^---$/m);
  const kept = documents.filter(
    (doc) => !(/^kind: User$/m.test(doc) && new RegExp(`^  name: ${user}$`, 'm').test(doc)),
  );
  if (kept.length === documents.length) throw new Error(`no user ${user} in the catalog`);
  fs.writeFileSync(catalogFile, kept.join('---'));
  const headers = { authorization: `Bearer ${harnessToken}` };
  const entityUrl = `${url}/api/catalog/entities/by-name/user/default/${encodeURIComponent(user)}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = await fetch(entityUrl, { headers });
    if (found.status === 404) return;
    if (Date.now() > deadline) throw new Error(`the catalog still has ${user}`);
    if (found.ok) {
      const { metadata } = await found.json();
      await fetch(`${url}/api/catalog/entities/by-uid/${metadata.uid}`, { method: 'DELETE', headers });
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function main() {
  const port = Number(process.env.BACKSTAGE_PORT) || (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const harnessToken = crypto.randomBytes(24).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagepass-backstage-'));
  const configFile = path.join(dir, 'app-config.json');
  const config = {
    app: { baseUrl: url },
    backend: {
      baseUrl: url,
      listen: { host: '127.0.0.1', port },
      database: { client: 'better-sqlite3', connection: ':memory:' },
      // The plugins whose actions the MCP actions plugin serves.
      actions: { pluginSources: ['catalog', 'stagepass-test'] },
      auth: {
        externalAccess: [
          { type: 'static', options: { token: harnessToken, subject: 'stagepass-test-harness' } },
        ],
      },
    },
    auth: {
      environment: 'development',
      backstageTokenExpiration: { minutes: 10 },
      experimentalRefreshToken: { enabled: true },
      clientIdMetadataDocuments: { enabled: true },
      providers: {
        oauth2Proxy: {
          // X-Forwarded-User first (the consent browser sends it; oauth2-proxy sends the
          // IdP's `sub`, which matches no entity), then oauth2-proxy's preferred username.
          signIn: {
            resolvers: [
              { resolver: 'forwardedUserMatchingUserEntityName' },
              { resolver: 'forwardedPreferredUsernameMatchingUserEntityName' },
            ],
          },
        },
      },
    },
    catalog: {
      rules: [{ allow: ['User', 'Group', 'Component', 'System', 'Location'] }],
      locations: [{ type: 'file', target: path.join(__dirname, 'catalog.yaml') }],
    },
  };
  // A copy of the catalog that /test/leave can edit.
  const catalogFile = path.join(dir, 'catalog.yaml');
  fs.copyFileSync(path.join(__dirname, 'catalog.yaml'), catalogFile);
  config.catalog.locations[0].target = catalogFile;
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  process.argv.push('--config', configFile);

  const { createBackend } = require('@backstage/backend-defaults');
  const { rootHttpRouterServiceFactory } = require('@backstage/backend-defaults/rootHttpRouter');
  const backend = createBackend();
  backend.add(
    rootHttpRouterServiceFactory({
      configure({ app, applyDefaults }) {
        app.get('/test/stats', (_req, res) => res.json(stats));
        app.post('/test/leave', async (req, res) => {
          try {
            await leave(url, harnessToken, catalogFile, String(req.query.user));
            res.status(204).end();
          } catch (err) {
            res.status(500).json({ error: String(err) });
          }
        });
        // Counts what reached Backstage's token and revocation endpoints; the body is
        // parsed by the auth plugin, so the grant type is read once the answer is sent.
        app.use((req, res, next) => {
          if (req.method === 'POST' && req.path === '/api/auth/v1/token') {
            res.on('finish', () => {
              const grant = req.body?.grant_type ?? 'unknown';
              stats.token[grant] = (stats.token[grant] ?? 0) + 1;
            });
          }
          if (req.method === 'POST' && req.path === '/api/auth/v1/revoke') {
            stats.revoke += 1;
          }
          if (req.method === 'POST' && req.path.replace(/\/$/, '') === '/api/mcp-actions/v1') {
            stats.mcp += 1;
          }
          next();
        });
        applyDefaults();
      },
    }),
  );
  backend.add(require('@backstage/plugin-auth-backend'));
  backend.add(require('@backstage/plugin-auth-backend-module-oauth2-proxy-provider'));
  backend.add(require('@backstage/plugin-catalog-backend'));
  backend.add(require('@backstage/plugin-mcp-actions-backend'));
  backend.add(testActionsPlugin());
  await backend.start();

  // Ready once the catalog has processed the test users.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await fetch(`${url}/api/catalog/entities/by-name/user/default/bob`, {
      headers: { authorization: `Bearer ${harnessToken}` },
    }).catch(() => undefined);
    if (response?.ok) break;
    if (Date.now() > deadline) {
      console.error(`backstage: the catalog did not load the test users (last: ${response?.status})`);
      process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  writeStdout(`${JSON.stringify({ url, harness_token: harnessToken })}\n`);

  const stop = async () => {
    await backend.stop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error('backstage:', err);
  process.exit(1);
});
