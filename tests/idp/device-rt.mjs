#!/usr/bin/env node
// Prints a refresh token for a confidential client, obtained with the device flow and the
// scripted browser: `node device-rt.mjs ISSUER CLIENT_ID CLIENT_SECRET`. Benchmarks use it to
// give oidc-agent (which cannot use a public client) a login without a human.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [issuer, clientId, secret] = process.argv.slice(2);
const auth = 'Basic ' + Buffer.from(`${clientId}:${secret}`).toString('base64');
const post = async (path, params) => {
  const response = await fetch(`${issuer}${path}`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
  return response.json();
};
const device = await post('/device/auth', { scope: 'openid email offline_access' });
const browser = spawnSync(join(dirname(fileURLToPath(import.meta.url)), 'browser'), ['--device', device.verification_uri_complete], { stdio: ['ignore', 'ignore', 'inherit'] });
if (browser.status !== 0) process.exit(1);
const tokens = await post('/token', {
  grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
  device_code: device.device_code,
});
if (!tokens.refresh_token) {
  console.error('no refresh token:', tokens);
  process.exit(1);
}
console.log(tokens.refresh_token);
