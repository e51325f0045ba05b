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

const MAX_STEPS = 30;
const TIMEOUT_MS = 15_000;
const USER = process.env.STAGEPASS_TEST_USER || 'alice';
const DENY = (process.env.STAGEPASS_TEST_CONSENT || '').toLowerCase() === 'deny';

function log(msg) {
  process.stderr.write(`browser: ${msg}\n`);
}

class Unexpected extends Error {
  constructor(message, page) {
    super(message);
    this.page = page;
  }
}

function truncate(s, n = 2048) {
  return s.length > n ? `${s.slice(0, n)}\n... [truncated, ${s.length} bytes total]` : s;
}

// ---------------------------------------------------------------- cookies

// hostname -> array of { name, value, path, expires (ms epoch or null) }
const jar = new Map();

function defaultCookiePath(url) {
  const p = url.pathname;
  if (!p.startsWith('/') || p.lastIndexOf('/') === 0) return '/';
  return p.slice(0, p.lastIndexOf('/'));
}

function storeCookies(url, setCookies) {
  const host = url.hostname;
  if (!jar.has(host)) jar.set(host, []);
  const list = jar.get(host);
  for (const header of setCookies) {
    const [pair, ...attrs] = header.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = null;
    let expires = null;
    let maxAge = null;
    for (const attr of attrs) {
      const i = attr.indexOf('=');
      const k = (i === -1 ? attr : attr.slice(0, i)).trim().toLowerCase();
      const v = i === -1 ? '' : attr.slice(i + 1).trim();
      if (k === 'path' && v.startsWith('/')) path = v;
      else if (k === 'expires') {
        const t = Date.parse(v);
        if (!Number.isNaN(t)) expires = t;
      } else if (k === 'max-age' && /^-?\d+$/.test(v)) maxAge = Number(v);
    }
    if (maxAge !== null) expires = Date.now() + maxAge * 1000;
    path ??= defaultCookiePath(url);
    const idx = list.findIndex((c) => c.name === name && c.path === path);
    if (idx !== -1) list.splice(idx, 1);
    if (expires !== null && expires <= Date.now()) continue; // deletion
    list.push({ name, value, path, expires });
  }
}

function pathMatches(reqPath, cookiePath) {
  if (reqPath === cookiePath) return true;
  if (!reqPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || reqPath[cookiePath.length] === '/';
}

function cookieHeader(url) {
  const now = Date.now();
  const list = (jar.get(url.hostname) || [])
    .filter((c) => (c.expires === null || c.expires > now) && pathMatches(url.pathname, c.path))
    .sort((a, b) => b.path.length - a.path.length);
  return list.map((c) => `${c.name}=${c.value}`).join('; ');
}

// ---------------------------------------------------------------- HTML

function decodeEntities(s) {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function parseAttrs(s) {
  const attrs = {};
  const re = /([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  let m;
  while ((m = re.exec(s)) !== null) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

function parseForms(html) {
  const forms = [];
  const re = /<form\b([^>]*)>([\s\S]*?)<\/form>/gi;
  let m;
  while ((m = re.exec(html)) !== null) {
    const attrs = parseAttrs(m[1]);
    const inputs = [];
    const ire = /<input\b([^>]*)>/gi;
    let im;
    while ((im = ire.exec(m[2])) !== null) {
      const a = parseAttrs(im[1]);
      if (a.name) inputs.push({ name: a.name, value: a.value ?? '', type: (a.type || 'text').toLowerCase() });
    }
    forms.push({
      id: attrs.id || '',
      action: attrs.action || '',
      method: (attrs.method || 'get').toLowerCase(),
      inputs,
    });
  }
  return forms;
}

function fieldValue(form, name) {
  return form.inputs.find((i) => i.name === name)?.value;
}

function title(html) {
  const m = /<title>([\s\S]*?)<\/title>/i.exec(html);
  return m ? decodeEntities(m[1].trim()) : '';
}

// ---------------------------------------------------------------- HTTP

async function request(method, url, fields) {
  const headers = { 'user-agent': 'stagepass-test-browser/1', accept: 'text/html,*/*' };
  const cookies = cookieHeader(url);
  if (cookies) headers.cookie = cookies;
  let body;
  if (method === 'POST') {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(fields).toString();
  }
  let res;
  try {
    res = await fetch(url, {
      method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const e = new Error(`${method} ${url.href} failed: ${err.cause?.code || err.cause?.message || err.message}`);
    e.network = true;
    throw e;
  }
  storeCookies(url, res.headers.getSetCookie());
  const text = await res.text();
  log(`${method} ${url.origin}${url.pathname} -> ${res.status}`);
  return { status: res.status, headers: res.headers, body: text, url };
}

function formRequest(base, form, fields) {
  const target = new URL(form.action || base.href, base);
  if (form.method === 'post') return { method: 'POST', url: target, fields };
  for (const [k, v] of Object.entries(fields)) target.searchParams.set(k, v);
  return { method: 'GET', url: target };
}

function hiddenFields(form) {
  const out = {};
  for (const i of form.inputs) if (i.type === 'hidden') out[i.name] = i.value;
  return out;
}

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

// stagepass hands the browser a file:// URL of a private page that redirects (meta refresh)
// to the real address, so the address never sits in argv. Follow it as a browser would; the
// flow's origin is the redirect target's, not the file's.
async function startUrl(arg) {
  const url = new URL(arg);
  if (url.protocol !== 'file:') return url;
  const { readFile } = await import('node:fs/promises');
  const { fileURLToPath } = await import('node:url');
  const page = await readFile(fileURLToPath(url), 'utf8');
  const meta = /<meta\b[^>]*http-equiv\s*=\s*"refresh"[^>]*>/i.exec(page);
  const content = meta && parseAttrs(meta[0].slice(5)).content;
  const target = content && /^\s*\d+\s*;\s*url\s*=\s*(.*)$/i.exec(content);
  if (!target) throw new Error('no meta refresh in the page');
  log(`redirect page ${url.href}`);
  return new URL(target[1].trim());
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
