#!/usr/bin/env node
// Test-only admin client of the real Keycloak the tests start (tests/support/keycloak.rs).
// The bootstrap admin's password comes from the environment (KC_BOOTSTRAP_ADMIN_USERNAME /
// KC_BOOTSTRAP_ADMIN_PASSWORD, as kc.sh reads them), never from argv; tokens come on stdin.
//
//   node admin.mjs import URL FILE...          create each realm of FILE (replacing one that exists)
//   node admin.mjs introspect URL REALM        RFC 7662 introspection of the token on stdin, as the
//                                              oauth2-proxy client; prints Keycloak's JSON answer
//   node admin.mjs refresh URL REALM CLIENT    a refresh_token grant with the token on stdin, as
//                                              another party holding it; prints {status, body}
//   node admin.mjs client URL REALM CLIENT JSON  merge JSON into the client's representation
//   node admin.mjs events URL REALM TYPE CLIENT  how many TYPE events of CLIENT Keycloak recorded
//
// Exit status: 0 on success, 1 with the server's answer on stderr otherwise.

const [command, base, ...rest] = process.argv.slice(2);

function fail(message) {
  process.stderr.write(`keycloak admin: ${message}\n`);
  process.exit(1);
}

async function stdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8').trim();
}

async function form(url, fields, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

async function adminToken() {
  const { status, body } = await form(`${base}/realms/master/protocol/openid-connect/token`, {
    grant_type: 'password',
    client_id: 'admin-cli',
    username: process.env.KC_BOOTSTRAP_ADMIN_USERNAME ?? fail('KC_BOOTSTRAP_ADMIN_USERNAME is not set'),
    password: process.env.KC_BOOTSTRAP_ADMIN_PASSWORD ?? fail('KC_BOOTSTRAP_ADMIN_PASSWORD is not set'),
  });
  if (status !== 200) fail(`admin sign-in: HTTP ${status} ${JSON.stringify(body)}`);
  return body.access_token;
}

async function admin(token, method, path, json) {
  const res = await fetch(`${base}/admin/realms${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  const text = await res.text();
  if (!res.ok && !(method === 'DELETE' && res.status === 404)) {
    fail(`${method} /admin/realms${path}: HTTP ${res.status} ${text.slice(0, 2000)}`);
  }
  return text ? JSON.parse(text) : null;
}

const fs = await import('node:fs');
const token = command === 'refresh' || command === 'introspect' ? null : await adminToken();

if (command === 'import') {
  for (const file of rest) {
    const realm = JSON.parse(fs.readFileSync(file, 'utf8'));
    await admin(token, 'DELETE', `/${realm.realm}`);
    await admin(token, 'POST', '', realm);
  }
} else if (command === 'client') {
  const [realm, clientId, json] = rest;
  const [client] = await admin(token, 'GET', `/${realm}/clients?clientId=${encodeURIComponent(clientId)}`);
  if (!client) fail(`no client ${clientId} in realm ${realm}`);
  const patch = JSON.parse(json);
  const merged = { ...client, ...patch, attributes: { ...client.attributes, ...(patch.attributes ?? {}) } };
  await admin(token, 'PUT', `/${realm}/clients/${client.id}`, merged);
} else if (command === 'events') {
  const [realm, type, clientId] = rest;
  const query = new URLSearchParams({ type, client: clientId, max: '100000' });
  const events = await admin(token, 'GET', `/${realm}/events?${query}`);
  console.log(JSON.stringify({ count: events.length }));
} else if (command === 'introspect') {
  const [realm] = rest;
  const basic = Buffer.from('oauth2-proxy:oauth2-proxy-test-secret').toString('base64');
  const { status, body } = await form(
    `${base}/realms/${realm}/protocol/openid-connect/token/introspect`,
    { token: await stdin() },
    { authorization: `Basic ${basic}` },
  );
  if (status !== 200) fail(`introspection: HTTP ${status} ${JSON.stringify(body)}`);
  console.log(JSON.stringify(body));
} else if (command === 'refresh') {
  const [realm, clientId] = rest;
  const answer = await form(`${base}/realms/${realm}/protocol/openid-connect/token`, {
    grant_type: 'refresh_token',
    refresh_token: await stdin(),
    client_id: clientId,
  });
  console.log(JSON.stringify(answer));
} else {
  fail('usage: admin.mjs import|introspect|refresh|client|events URL ...');
}
