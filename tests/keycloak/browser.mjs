#!/usr/bin/env node
// Scripted "browser" for the end-to-end tests against the real Keycloak (tests/keycloak/):
// it fills Keycloak's own login form, accepts (or cancels) its consent page and its device
// verification pages, and ends by requesting the client's loopback redirect URI.
//
//   node browser.mjs URL                     authorization code flow, from URL (the authorization
//                                            request, or the file:// page stagepass opens that
//                                            redirects to it)
//   node browser.mjs --device URI_COMPLETE   the device flow's verification_uri_complete
//
// Environment: STAGEPASS_TEST_USER (default alice; the realm's password is NAME-password),
// STAGEPASS_TEST_CONSENT=deny to cancel at the consent page.
// Exit status: 0 at the end; 1 when a page did not look as expected (printed, truncated); 2 on
// bad usage; 3 on a network error.

import {
  Unexpected, fieldValue, formRequest, hiddenFields, log, parseForms, request, startUrl, title, truncate,
} from '../idp/browser-kit.mjs';

const MAX_STEPS = 30;
const USER = process.env.STAGEPASS_TEST_USER || 'alice';
const DENY = (process.env.STAGEPASS_TEST_CONSENT || '').toLowerCase() === 'deny';

// The page's error, as Keycloak's login theme shows it (`kc-error-message`, or an alert).
function keycloakError(page) {
  const m = /id="kc-error-message"[\s\S]*?<p[^>]*>([\s\S]*?)<\/p>/i.exec(page)
    ?? /class="[^"]*(?:alert-error|pf-m-danger)[^"]*"[\s\S]*?<span[^>]*kc-feedback-text[^>]*>([\s\S]*?)<\/span>/i.exec(page);
  return m ? m[1].replace(/<[^>]*>/g, '').trim() : null;
}

function isEnd(url, redirectUri) {
  return redirectUri !== null && `${url.origin}${url.pathname}` === redirectUri;
}

async function run(start, deviceMode) {
  let redirectUri = null;
  let next = { method: 'GET', url: start };
  let sawLogin = false;
  let sawConsent = false;

  for (let step = 0; step < MAX_STEPS; step += 1) {
    if (next.url.pathname.endsWith('/protocol/openid-connect/auth')) {
      const wanted = next.url.searchParams.get('redirect_uri');
      if (wanted) {
        const parsed = new URL(wanted);
        redirectUri = `${parsed.origin}${parsed.pathname}`;
      }
    }
    if (isEnd(next.url, redirectUri)) {
      const res = await request(next.method, next.url, next.fields);
      process.stderr.write(`browser: final page ${next.url.href}\nbrowser: HTTP ${res.status}\n${res.body}\n`);
      if (deviceMode) throw new Unexpected('the device flow reached a redirect URI', res.body);
      return;
    }
    const res = await request(next.method, next.url, next.fields);
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get('location');
      if (!location) throw new Unexpected(`HTTP ${res.status} without Location`, res.body);
      next = { method: 'GET', url: new URL(location, res.url) };
      continue;
    }
    const page = res.body;
    const pageTitle = title(page);
    const describe = () => `HTTP ${res.status} ${res.url.href} title=${JSON.stringify(pageTitle)}`;
    const error = keycloakError(page);
    if (res.status !== 200 || (error && !/^Invalid username or password/.test(error))) {
      throw new Unexpected(`Keycloak says ${JSON.stringify(error)}: ${describe()}`, page);
    }
    const forms = parseForms(page);
    const login = forms.find((f) => f.id === 'kc-form-login');
    const consent = forms.find((f) => f.id === 'kc-oauth' || /oauth-grant|consent/.test(f.action));
    const deviceCode = forms.find((f) => f.inputs.some((i) => i.name === 'device_user_code'));

    if (login) {
      if (sawLogin) throw new Unexpected(`login refused for ${JSON.stringify(USER)}: ${error}`, page);
      sawLogin = true;
      log(`login as ${JSON.stringify(USER)}`);
      next = formRequest(res.url, login, { ...hiddenFields(login), username: USER, password: `${USER}-password` });
    } else if (consent) {
      if (sawConsent) throw new Unexpected(`consent page shown again: ${describe()}`, page);
      sawConsent = true;
      log(`consent: ${DENY ? 'cancel' : 'accept'}`);
      next = formRequest(res.url, consent, { ...hiddenFields(consent), ...(DENY ? { cancel: 'No' } : { accept: 'Yes' }) });
    } else if (deviceCode) {
      const code = fieldValue(deviceCode, 'device_user_code') || start.searchParams.get('user_code');
      if (!code) throw new Unexpected(`device code page but no user code known: ${describe()}`, page);
      log(`device: submit user code ${code}`);
      next = formRequest(res.url, deviceCode, { ...hiddenFields(deviceCode), device_user_code: code });
    } else if (deviceMode && /Device Login Successful|device-login-success|Device login successful/i.test(page)) {
      if (DENY) throw new Unexpected('reached the success page although consent was to be denied', page);
      log('device: signed in');
      return;
    } else if (deviceMode && DENY && sawConsent && /denied|cancel/i.test(page)) {
      log('device: consent denied');
      return;
    } else {
      throw new Unexpected(`page not recognised: ${describe()}`, page);
    }
  }
  throw new Unexpected(`gave up after ${MAX_STEPS} requests`, '');
}

async function main() {
  const args = process.argv.slice(2);
  const deviceMode = args[0] === '--device';
  if (deviceMode) args.shift();
  if (args.length !== 1) {
    process.stderr.write('usage: browser.mjs URL | browser.mjs --device VERIFICATION_URI_COMPLETE\n');
    process.exit(2);
  }
  try {
    const url = await startUrl(args[0]);
    log(`${deviceMode ? 'device flow' : 'authorization flow'} as ${JSON.stringify(USER)} at ${url.origin}`);
    await run(url, deviceMode);
    log('done');
    process.exit(0);
  } catch (err) {
    process.stderr.write(`browser: ERROR: ${err.message}\n`);
    if (err.page) process.stderr.write(`----- page -----\n${truncate(err.page)}\n----- end -----\n`);
    process.exit(err instanceof Unexpected ? 1 : err.network ? 3 : 2);
  }
}

await main();
