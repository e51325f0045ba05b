// UPSTREAM_TLS_DIR=DIR: serve HTTPS with a leaf certificate for IP 127.0.0.1 issued by a
// throwaway CA (openssl CLI, files written to DIR); the ready line then has `ca_file`.
//
// A proxy upstream for the local proxy's tests and benchmark: echoes what reached it, streams
// server-sent events, echoes WebSocket frames (a minimal RFC 6455 handler: `ws` is not
// installed), and refuses tokens on demand to exercise the retry after a refresh. It checks
// no token itself: the tests read what arrived.
//
//   GET  /echo              {method, url, headers} as JSON
//   GET  /static            a fixed 13-byte body (the benchmark's target)
//   GET  /sse               text/event-stream: `data: one`, a pause of SSE_PAUSE_MS (800), `data: two`
//   GET  /slow?ms=N         answers after N ms (default 3000)
//   GET  /redirect          302 to this server's /echo, with a Domain=, Secure cookie
//   GET  /ws (upgrade)      WebSocket echo of text frames
//   GET  /ws-page           an HTML page that opens a WebSocket to `ws` beside it, sends `ping`
//                           and shows the outcome in <pre id=out> and the title:
//                           `WS echo: ping` or `WS FAILED ...`
//   GET  /page?target=URL   an HTML page of this (other) origin that fetches `target` with
//                           credentials and shows what it got in <pre id=out>:
//                           `DATA status body` or `BLOCKED error`
//   POST /test/reject-next?n=N   the next N requests that carry a credential get 401
//   GET  /test/stats        {authorizations: [the Authorization of each /echo, in order],
//                           requests: ["METHOD /path" of every request but /static and /test/]}
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';

import { requestListener, sendJson, serve } from './common.mjs';

const NAME = 'upstream-server';
const PAUSE = Number(process.env.SSE_PAUSE_MS ?? 800);
const stats = { authorizations: [], rejected: 0, requests: [] };
let rejectNext = 0;
let origin = '';

async function handle(req, res) {
  const url = new URL(req.url, origin);
  if (url.pathname === '/static') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 13 });
    return res.end('hello, proxy\n');
  }
  if (url.pathname === '/test/stats') return sendJson(res, 200, stats);
  if (!url.pathname.startsWith('/test/')) stats.requests.push(`${req.method} ${url.pathname}`);
  if (url.pathname === '/test/reject-next' && req.method === 'POST') {
    rejectNext = Number(url.searchParams.get('n') ?? 1);
    return sendJson(res, 200, { rejectNext });
  }
  const credential = req.headers.authorization;
  if (credential && rejectNext > 0) {
    rejectNext -= 1;
    stats.rejected += 1;
    return sendJson(res, 401, { error: 'token refused (test)' });
  }
  if (url.pathname === '/echo') {
    stats.authorizations.push(credential ?? null);
    const body = [];
    for await (const chunk of req) body.push(chunk);
    return sendJson(res, 200, {
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: Buffer.concat(body).toString('utf8'),
    });
  }
  if (url.pathname === '/slow') {
    await new Promise((resolve) => setTimeout(resolve, Number(url.searchParams.get('ms') ?? 3000)));
    return sendJson(res, 200, { slow: true });
  }
  if (url.pathname === '/sse') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('data: one\n\n');
    await new Promise((resolve) => setTimeout(resolve, PAUSE));
    return res.end('data: two\n\n');
  }
  if (url.pathname === '/page') {
    const target = JSON.stringify(url.searchParams.get('target') ?? '');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(`<!doctype html><pre id="out">pending</pre>
<script>
fetch(${target}, { credentials: 'include' })
  .then(async (response) => 'DATA ' + response.status + ' ' + (await response.text()))
  .catch((err) => 'BLOCKED ' + err)
  .then((text) => { document.getElementById('out').textContent = text; });
</script>`);
  }
  if (url.pathname === '/ws-page') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(`<!doctype html><title>pending</title><pre id="out">pending</pre>
<script>
const show = (text) => { document.getElementById('out').textContent = text; document.title = text; };
const target = new URL('ws', location.href);
target.protocol = target.protocol === 'https:' ? 'wss:' : 'ws:';
const socket = new WebSocket(target);
socket.onopen = () => socket.send('ping');
socket.onmessage = (event) => { show('WS ' + event.data); socket.close(); };
socket.onerror = () => show('WS FAILED to connect');
</script>
<!-- Holds the load event (and so a headless --dump-dom) back while the socket talks: on a
     loaded machine the page otherwise loads, and is dumped, before the echo arrives. -->
<img src="slow?ms=4000" alt="">`);
  }
  if (url.pathname === '/redirect') {
    res.writeHead(302, {
      location: `${origin}/echo?from=redirect`,
      'set-cookie': 'upstream_session=1; Domain=127.0.0.1; Path=/; Secure; HttpOnly',
      'access-control-allow-origin': '*',
    });
    return res.end();
  }
  return sendJson(res, 404, { error: 'no such path' });
}

// RFC 6455: the accept key, then frames. Client frames are masked; ours are not.
function upgrade(req, socket) {
  const key = req.headers['sec-websocket-key'];
  if (req.url !== '/ws' || !key || !req.headers.authorization) {
    socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    return;
  }
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
  let buffer = Buffer.alloc(0);
  socket.on('data', (data) => {
    buffer = Buffer.concat([buffer, data]);
    for (;;) {
      if (buffer.length < 2) return;
      const opcode = buffer[0] & 0x0f;
      let length = buffer[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        offset = 4;
      }
      const masked = (buffer[1] & 0x80) !== 0;
      const maskOffset = offset;
      if (masked) offset += 4;
      if (buffer.length < offset + length) return;
      const payload = Buffer.from(buffer.subarray(offset, offset + length));
      if (masked) for (let i = 0; i < length; i += 1) payload[i] ^= buffer[maskOffset + (i % 4)];
      buffer = buffer.subarray(offset + length);
      if (opcode === 8) return socket.end(Buffer.from([0x88, 0]));
      const reply = Buffer.from(`echo: ${payload.toString('utf8')}`);
      socket.write(Buffer.concat([Buffer.from([0x81, reply.length]), reply]));
    }
  });
  socket.on('error', () => {});
}

// A CA and a leaf it signed: rustls (webpki) refuses a self-signed CA as the server's own
// certificate, so the usual one-certificate setup would not do.
function certificates(dir) {
  const file = (name) => join(dir, name);
  const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1',
    '-subj', '/CN=stagepass test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign');
  openssl('req', ...ec, '-keyout', file('leaf.key'), '-out', file('leaf.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(file('leaf.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' +
    'keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', file('leaf.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
    '-CAcreateserial', '-out', file('leaf.pem'), '-days', '1', '-extfile', file('leaf.ext'));
  return { key: readFileSync(file('leaf.key')), cert: readFileSync(file('leaf.pem')), ca: file('ca.pem') };
}

const tlsDir = process.env.UPSTREAM_TLS_DIR;
const tls = tlsDir ? certificates(tlsDir) : null;
const server = tls
  ? createHttpsServer({ key: tls.key, cert: tls.cert }, requestListener(NAME, handle))
  : createServer(requestListener(NAME, handle));
server.on('upgrade', upgrade);
server.keepAliveTimeout = 60_000;
await serve(server, {
  name: NAME,
  ready: (port) => {
    origin = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    return tls ? { url: origin, ca_file: tls.ca } : { url: origin };
  },
});
