// The real `git http-backend` (CGI) for one request at a time, bodies streamed both ways: shared
// by the test servers that serve git behind their own credential check (git-server.mjs checks
// test-IdP JWTs, github-server.mjs GitHub user tokens).
import { spawn, execFileSync } from 'node:child_process';
import { join } from 'node:path';

// Returns runBackend(req, res, url, user): serves the request from PROJECT_ROOT/NAME.git as
// REMOTE_USER `user` (http-backend allows pushes only for an authenticated user).
export function gitBackend(NAME, PROJECT_ROOT) {
  const backend = join(execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim(), 'git-http-backend');
  return function runBackend(req, res, url, user) {
    const env = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: PROJECT_ROOT,
      GIT_HTTP_EXPORT_ALL: '1',
      // http-backend enables receive-pack (push) only for an authenticated REMOTE_USER.
      REMOTE_USER: user,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      REQUEST_METHOD: req.method,
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      // git http-backend inflates gzip request bodies itself.
      HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
      // Protocol v2 is negotiated through this header (Apache does the same with SetEnvIf).
      GIT_PROTOCOL: req.headers['git-protocol'] ?? '',
    };
    // Without CONTENT_LENGTH (chunked pushes), http-backend reads the body to EOF.
    if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length'];
    const cgi = spawn(backend, [], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    cgi.on('error', (err) => {
      console.error(`${NAME}: cannot run ${backend}: ${err.message}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
    cgi.stdin.on('error', () => {}); // the CGI may exit before reading everything (e.g. an error)
    req.pipe(cgi.stdin);

    // CGI output: header lines, a blank line, then the body, which is streamed as it comes.
    let head = Buffer.alloc(0);
    let headerDone = false;
    cgi.stdout.on('data', (chunk) => {
      if (headerDone) {
        if (!res.write(chunk)) {
          cgi.stdout.pause();
          res.once('drain', () => cgi.stdout.resume());
        }
        return;
      }
      head = Buffer.concat([head, chunk]);
      const crlf = head.indexOf('\r\n\r\n');
      const lf = head.indexOf('\n\n');
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
      if (end < 0) return;
      const sep = end === crlf ? 4 : 2;
      let status = 200;
      const headers = {};
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon < 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'status') status = parseInt(value, 10);
        else headers[name] = value;
      }
      headerDone = true;
      res.writeHead(status, headers);
      const rest = head.subarray(end + sep);
      if (rest.length) res.write(rest);
    });
    cgi.stdout.on('end', () => {
      if (!headerDone) res.writeHead(502);
      res.end();
    });
  };
}
