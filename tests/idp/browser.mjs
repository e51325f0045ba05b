#!/usr/bin/env node
// Scripted "browser" for stagepass end-to-end tests against server.mjs
// (oidc-provider devInteractions). No human, no real browser.
//
//   node browser.mjs AUTHORIZATION_URL | file:///…/REDIRECT_PAGE.html
//       Starts at the IdP authorization endpoint (a file:// page is read and
//       its meta refresh followed, as stagepass opens browsers that way), logs in, consents (or
//       denies), and ends by requesting the client's redirect URI
//       (e.g. http://127.0.0.1:<port>/callback?code=...). The final page's
//       HTTP status and body are printed to stderr.
//   node browser.mjs --device VERIFICATION_URI_COMPLETE
//       Confirms the user code, logs in, consents (or denies); ends at the
//       IdP's "Sign-in Success" page (or, when denying, the "interrupted"
//       page; the device then gets access_denied from the token endpoint).
//
// Environment:
//   STAGEPASS_TEST_USER     login name (default "alice"; any password)
//   STAGEPASS_TEST_CONSENT  "deny" to cancel at the consent page
//                           (anything else / unset = confirm)
//
// Exit status: 0 when the end was reached; 1 when a page did not look as
// expected (the page is printed, truncated to 2 KB); 2 on bad usage;
// 3 on a network error.

import {
  Unexpected, decodeEntities, fieldValue, formRequest, hiddenFields, log, parseForms, request, startUrl, title,
  truncate,
} from './browser-kit.mjs';

const MAX_STEPS = 30;
const USER = process.env.STAGEPASS_TEST_USER || 'alice';
const DENY = (process.env.STAGEPASS_TEST_CONSENT || '').toLowerCase() === 'deny';

// ---------------------------------------------------------------- flow

async function run(startUrl, deviceMode) {
  const idpOrigin = startUrl.origin;
  const userCodeFromUrl = startUrl.searchParams.get('user_code') || '';
  let next = { method: 'GET', url: startUrl };
  let sawLogin = false;
  let sawConsent = false;

  for (let step = 0; step < MAX_STEPS; step += 1) {
    // Anything outside the IdP's origin is the client's redirect URI: the end.
    if (next.url.origin !== idpOrigin) {
      const res = await request(next.method, next.url, next.fields);
      process.stderr.write(`browser: final page ${next.url.href}\nbrowser: HTTP ${res.status}\n${res.body}\n`);
      if (deviceMode) {
        throw new Unexpected(`device flow left the IdP (${next.url.origin})`, res.body);
      }
      return;
    }

    const res = await request(next.method, next.url, next.fields);

    if (res.status >= 300 && res.status < 400) {
      const loc = res.headers.get('location');
      if (!loc) throw new Unexpected(`HTTP ${res.status} without Location`, res.body);
      next = { method: 'GET', url: new URL(loc, res.url) };
      continue;
    }

    const page = res.body;
    const pageTitle = title(page);
    const describe = () => `HTTP ${res.status} ${res.url.href} title=${JSON.stringify(pageTitle)}`;
    if (res.status !== 200) {
      throw new Unexpected(`unexpected ${describe()}`, page);
    }

    const forms = parseForms(page);
    const byPrompt = (p) => forms.find((f) => fieldValue(f, 'prompt') === p);
    const login = byPrompt('login');
    const consent = byPrompt('consent');
    const deviceInput = forms.find((f) => f.id === 'op.deviceInputForm');
    const deviceConfirm = forms.find((f) => f.id === 'op.deviceConfirmForm');

    if (login) {
      if (sawLogin) throw new Unexpected(`login form shown again (login ${JSON.stringify(USER)} rejected?): ${describe()}`, page);
      sawLogin = true;
      log(`login as ${JSON.stringify(USER)}`);
      next = formRequest(res.url, login, { ...hiddenFields(login), login: USER, password: 'any' });
    } else if (consent) {
      if (sawConsent) throw new Unexpected(`consent form shown again: ${describe()}`, page);
      sawConsent = true;
      if (DENY) {
        const m = /<a\b[^>]*href\s*=\s*"([^"]*\/abort[^"]*)"/i.exec(page);
        if (!m) throw new Unexpected(`consent page has no abort link: ${describe()}`, page);
        log('consent: deny (abort link)');
        next = { method: 'GET', url: new URL(decodeEntities(m[1]), res.url) };
      } else {
        log('consent: confirm');
        next = formRequest(res.url, consent, hiddenFields(consent));
      }
    } else if (deviceConfirm) {
      log(`device: confirm user code ${fieldValue(deviceConfirm, 'user_code')}`);
      next = formRequest(res.url, deviceConfirm, { ...hiddenFields(deviceConfirm), confirm: 'yes' });
    } else if (deviceInput) {
      if (/The Sign-in request was interrupted/.test(page)) {
        if (DENY && sawConsent) {
          process.stderr.write(`browser: final page ${res.url.href} (device authorization denied)\nbrowser: HTTP ${res.status}\n`);
          return;
        }
        throw new Unexpected(`device flow was interrupted: ${describe()}`, page);
      }
      if (/class="red"/.test(page)) {
        throw new Unexpected(`device code page shows an error: ${describe()}`, page);
      }
      const code = fieldValue(deviceInput, 'user_code') || userCodeFromUrl;
      if (!code) throw new Unexpected(`device code input page but no user_code known: ${describe()}`, page);
      log(`device: submit user code ${code}`);
      next = formRequest(res.url, deviceInput, { ...hiddenFields(deviceInput), user_code: code });
    } else if (/Sign-in Success/.test(pageTitle)) {
      process.stderr.write(`browser: final page ${res.url.href}\nbrowser: HTTP ${res.status}\n${page}\n`);
      if (DENY) throw new Unexpected('reached the success page although consent was to be denied', page);
      if (!deviceMode) throw new Unexpected('reached the device success page in authorization-code mode', page);
      return;
    } else if (forms.length === 1 && /document\.forms\[0\]\.submit\(\)/.test(page)) {
      // Auto-submitting form (form_post response mode, /device?user_code=...).
      const [f] = forms;
      log(`auto-submit form "${pageTitle}"`);
      next = formRequest(res.url, f, hiddenFields(f));
    } else {
      throw new Unexpected(`page not recognised: ${describe()}`, page);
    }
  }
  throw new Unexpected(`gave up after ${MAX_STEPS} requests`, '');
}

async function main() {
  const args = process.argv.slice(2);
  let deviceMode = false;
  if (args[0] === '--device') {
    deviceMode = true;
    args.shift();
  }
  if (args.length !== 1) {
    process.stderr.write('usage: browser.mjs URL | browser.mjs --device VERIFICATION_URI_COMPLETE\n');
    process.exit(2);
  }
  let url;
  try {
    url = await startUrl(args[0]);
  } catch (err) {
    process.stderr.write(`browser: not a URL or a readable redirect page: ${args[0]} (${err.message})\n`);
    process.exit(2);
  }
  log(`${deviceMode ? 'device flow' : 'authorization flow'} as ${JSON.stringify(USER)}, consent=${DENY ? 'deny' : 'confirm'}: ${url.href}`);
  try {
    await run(url, deviceMode);
    log('done');
    process.exit(0);
  } catch (err) {
    if (err instanceof Unexpected) {
      process.stderr.write(`browser: ERROR: ${err.message}\n`);
      if (err.page) process.stderr.write(`----- page -----\n${truncate(err.page)}\n----- end -----\n`);
      process.exit(1);
    }
    process.stderr.write(`browser: ERROR: ${err.message}\n`);
    process.exit(err.network ? 3 : 1);
  }
}

await main();
