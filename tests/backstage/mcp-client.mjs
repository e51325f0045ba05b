// A real MCP client (@modelcontextprotocol/sdk, Streamable HTTP) for stagepass end-to-end
// tests: reads a Claude Code style configuration (`{"mcpServers": {NAME: {type, url,
// headers}}}`, as `stagepass delegate mcp-config` prints it), expands `${VAR}` in its headers
// from the environment as Claude Code does, connects and runs the steps of argv.
//
// Usage: node mcp-client.mjs CONFIG_FILE SERVER STEP...
//   STEP: `list` (tools/list) or `call:TOOL` (tools/call with no arguments)
// Prints one JSON line per step: {"step", "ok": true, "result"} or {"step", "ok": false,
// "status": HTTP status or null, "message"}; a failed connect is the step "connect".

import fs from 'node:fs';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [configFile, serverName, ...steps] = process.argv.slice(2);
const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
const server = config.mcpServers?.[serverName];
if (!server || server.type !== 'http') {
  console.error(`mcp-client: no http server ${serverName} in ${configFile}`);
  process.exit(2);
}

// Claude Code's expansion: ${VAR} and ${VAR:-default}.
const expand = (value) =>
  value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name, fallback) => {
    const found = process.env[name] ?? fallback;
    if (found === undefined) throw new Error(`${name} is not set`);
    return found;
  });
const headers = Object.fromEntries(
  Object.entries(server.headers ?? {}).map(([name, value]) => [name, expand(value)]),
);

const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const failure = (step, err) => ({
  step,
  ok: false,
  // StreamableHTTPError carries the HTTP status as `code`.
  status: typeof err?.code === 'number' && err.code >= 100 ? err.code : null,
  message: String(err?.message ?? err),
});

const client = new Client({ name: 'stagepass-e2e', version: '0.0.0' });
const transport = new StreamableHTTPClientTransport(new URL(server.url), {
  requestInit: { headers },
});
try {
  await client.connect(transport);
} catch (err) {
  print(failure('connect', err));
  process.exit(0);
}
for (const step of steps) {
  try {
    if (step === 'list') {
      print({ step, ok: true, result: await client.listTools() });
    } else if (step.startsWith('call:')) {
      const result = await client.callTool({ name: step.slice(5), arguments: {} });
      print({ step, ok: true, result });
    } else {
      throw new Error(`unknown step ${step}`);
    }
  } catch (err) {
    print(failure(step, err));
  }
}
await client.close();
