// The scripted browsers' shared parts (tests/idp/browser.mjs, tests/keycloak/browser.mjs): a
// cookie jar, HTML form parsing and HTTP requests that never follow redirects by themselves.
// No human, no real browser: enough HTML for the IdPs' own login, consent and device pages.

const TIMEOUT_MS = 15_000;

export function log(msg) {
  process.stderr.write(`browser: ${msg}\n`);
}

export class Unexpected extends Error {
  constructor(message, page) {
    super(message);
    this.page = page;
  }
}

export function truncate(s, n = 2048) {
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

export function storeCookies(url, setCookies) {
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

export function cookieHeader(url) {
  const now = Date.now();
  const list = (jar.get(url.hostname) || [])
    .filter((c) => (c.expires === null || c.expires > now) && pathMatches(url.pathname, c.path))
    .sort((a, b) => b.path.length - a.path.length);
  return list.map((c) => `${c.name}=${c.value}`).join('; ');
}

// ---------------------------------------------------------------- HTML

export function decodeEntities(s) {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

export function parseAttrs(s) {
  const attrs = {};
  const re = /([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  let m;
  while ((m = re.exec(s)) !== null) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

export function parseForms(html) {
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

export function fieldValue(form, name) {
  return form.inputs.find((i) => i.name === name)?.value;
}

export function title(html) {
  const m = /<title>([\s\S]*?)<\/title>/i.exec(html);
  return m ? decodeEntities(m[1].trim()) : '';
}

// ---------------------------------------------------------------- HTTP

export async function request(method, url, fields) {
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

export function formRequest(base, form, fields) {
  const target = new URL(form.action || base.href, base);
  if (form.method === 'post') return { method: 'POST', url: target, fields };
  for (const [k, v] of Object.entries(fields)) target.searchParams.set(k, v);
  return { method: 'GET', url: target };
}

export function hiddenFields(form) {
  const out = {};
  for (const i of form.inputs) if (i.type === 'hidden') out[i.name] = i.value;
  return out;
}

// stagepass hands the browser a file:// URL of a private page that redirects (meta refresh)
// to the real address, so the address never sits in argv. Follow it as a browser would; the
// flow's origin is the redirect target's, not the file's.
export async function startUrl(arg) {
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
