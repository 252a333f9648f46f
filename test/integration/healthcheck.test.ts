import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { healthzUrl } from '../../src/cli/healthcheck-command.js';
import { runCli } from '../../src/cli/run-cli.js';
import { type LoopbackConfig, loopbackConfig } from '../support/bot-harness.js';

/** `okome healthcheck` (Docker's HEALTHCHECK) asks the port and host the configuration gives. */

let cfg: LoopbackConfig | undefined;
let server: Server | undefined;
afterEach(async () => {
  cfg?.cleanup();
  const s = server;
  if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()));
  cfg = server = undefined;
});

async function healthz(status: number): Promise<number> {
  server = createServer((req, res) => res.writeHead(req.url === '/healthz' ? status : 404).end());
  const s = server;
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const address = s.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

async function healthcheck(path: string) {
  const out: string[] = [];
  const code = await runCli(['healthcheck', '--config', path], {
    env: {},
    cwd: '/',
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => out.push(t) },
  });
  return { code, output: out.join('') };
}

describe('okome healthcheck follows the configuration', () => {
  it('exit 0 when /healthz on http.port answers 200, 1 on 503', async () => {
    const port = await healthz(200);
    cfg = await loopbackConfig((doc) => (doc.http = { port, host: '127.0.0.1' }));
    expect(await healthcheck(cfg.path)).toEqual({
      code: 0,
      output: `http://127.0.0.1:${port}/healthz: 200\n`,
    });
  });

  it('exit 1 when the bot answers 503 or nothing listens', async () => {
    const port = await healthz(503);
    cfg = await loopbackConfig((doc) => (doc.http = { port, host: '127.0.0.1' }));
    expect((await healthcheck(cfg.path)).code).toBe(1);
    const s = server;
    await new Promise<void>((resolve) => s?.close(() => resolve()));
    server = undefined;
    const gone = await healthcheck(cfg.path);
    expect(gone.code).toBe(1);
    expect(gone.output).toContain(`http://127.0.0.1:${port}/healthz: `);
  });

  it('a wildcard or unset host is asked on loopback', () => {
    expect(healthzUrl({ port: 3000 })).toBe('http://127.0.0.1:3000/healthz');
    expect(healthzUrl({ port: 3000, host: '0.0.0.0' })).toBe('http://127.0.0.1:3000/healthz');
    expect(healthzUrl({ port: 8080, host: '::' })).toBe('http://[::1]:8080/healthz');
    expect(healthzUrl({ port: 8080, host: '192.0.2.7' })).toBe('http://192.0.2.7:8080/healthz');
  });
});
