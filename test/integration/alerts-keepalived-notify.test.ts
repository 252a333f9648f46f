import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type KeepalivedEvent,
  NODE_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
} from '../../src/alerts/keepalived-hook.js';
import { createKeepalivedRoute, type HookRefusalRecord } from '../../src/alerts/webhook-routes.js';
import { type HttpServerHandle, startHttpServer } from '../../src/http/http-server.js';
import { closedLoopbackPort as closedPort } from '../support/ssh-node-config.js';

/**
 * Runs the real contrib/keepalived-notify (sh + curl + openssl) against the real handler on
 * 127.0.0.1: what the script signs must verify, and a captured request must not be reusable.
 */

const SCRIPT = fileURLToPath(new URL('../../contrib/keepalived-notify', import.meta.url));
const SECRET = 'notify-secret-with-$pecial "chars"';
/** pi-c signs with its own secret (nodes.pi-c.hookSecretEnv), not the shared one. */
const PI_C_SECRET = 'pi-c-own-notify-secret-0123';
const WINDOW_SEC = 300;

interface Captured {
  headers: Record<string, string>;
  body: Buffer;
}

let server: HttpServerHandle;
let hanging: Server;
let dir: string;
let seen = new Set<string>();
let events: KeepalivedEvent[] = [];
let captured: Captured[] = [];
let unknown: HookRefusalRecord[] = [];

const markSeen = async (key: string) => !seen.has(key) && seen.add(key) !== undefined;

beforeAll(async () => {
  const route = (path: string, skewMs: number) =>
    createKeepalivedRoute({
      path,
      secrets: { shared: SECRET, perNode: new Map([['pi-c', PI_C_SECRET]]) },
      knownNodes: new Set([hostname(), 'pi-a', 'pi-b', 'pi-c']),
      replayWindowSec: WINDOW_SEC,
      markSeen,
      now: () => Date.now() + skewMs,
      onKeepalived: (event) => {
        events.push(event);
      },
      onUnknownNode: (refusal) => unknown.push(refusal),
    });
  server = await startHttpServer({
    port: 0,
    host: '127.0.0.1',
    routes: [
      route('/hooks/keepalived', 0),
      // A second replica: its own route, the same seen marks (the replicas' shared store).
      route('/hooks/keepalived-replica', 0),
      // The same secret, with a clock (WINDOW + 1) s ahead: a request this old must be refused.
      route('/hooks/keepalived-later', (WINDOW_SEC + 1) * 1000),
      {
        path: '/capture',
        method: 'POST',
        maxBodyBytes: 4096,
        handle: (req, res, body) => {
          const headers = Object.fromEntries(
            Object.entries(req.headers).filter((e): e is [string, string] => typeof e[1] === 'string'),
          );
          captured.push({ headers, body });
          res.writeHead(202).end();
        },
      },
    ],
  });
  // Accepts connections and never answers: the script's own deadline must end the POST.
  hanging = createServer(() => {});
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  dir = mkdtempSync(join(tmpdir(), 'okome-notify-'));
});

afterAll(async () => {
  await server?.close();
  hanging?.closeAllConnections();
  await new Promise<void>((resolve) => (hanging ? hanging.close(() => resolve()) : resolve()));
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  seen = new Set();
  events = [];
  captured = [];
  unknown = [];
});

function envFile(lines: Record<string, string>, name = 'notify.env'): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    `# written by the test\n${Object.entries(lines)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
    {
      mode: 0o600,
    },
  );
  return path;
}

function runScript(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      'sh',
      [SCRIPT, ...args],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } },
      (error, _out, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stderr, ms: performance.now() - started });
      },
    );
  });
}

const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;

async function waitFor<T>(read: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function replay(
  c: Captured,
  path: string,
  body: Buffer = c.body,
): Promise<{ status: number; error: unknown }> {
  const res = await fetch(url(path), {
    method: 'POST',
    headers: {
      'content-type': c.headers['content-type'] ?? '',
      [TIMESTAMP_HEADER]: c.headers[TIMESTAMP_HEADER] ?? '',
      [NODE_HEADER]: c.headers[NODE_HEADER] ?? '',
      [SIGNATURE_HEADER]: c.headers[SIGNATURE_HEADER] ?? '',
    },
    body,
  });
  const json = (await res.json()) as { error?: unknown };
  return { status: res.status, error: json.error };
}

describe('contrib/keepalived-notify', () => {
  it('has the tools it needs (Debian packages curl and openssl)', async () => {
    for (const tool of ['curl', 'openssl']) {
      const { code } = await runScriptTool(tool);
      expect(code, `${tool} must be installed`).toBe(0);
    }
  });

  it('notify_master form: signs a request the handler verifies (node from uname -n)', async () => {
    const env = envFile({ OKOME_NOTIFY_URL: url('/hooks/keepalived'), OKOME_NOTIFY_SECRET: `'${SECRET}'` });
    const run = await runScript(['MASTER', 'VI_1'], { OKOME_NOTIFY_ENV: env, OKOME_NOTIFY_FOREGROUND: '1' });
    expect(run.stderr).toMatch(/MASTER for VI_1 on .*: HTTP 202/);
    expect(run.code).toBe(0);
    expect(events).toEqual([
      expect.objectContaining({ node: hostname(), instance: 'VI_1', state: 'MASTER' }),
    ]);
    const event = events[0];
    expect(Math.abs((event?.at ?? 0) - Date.now())).toBeLessThan(5000);
  });

  it('generic notify form (TYPE NAME STATE PRIORITY), node and instance from notify.env', async () => {
    const env = envFile({
      OKOME_NOTIFY_URL: `"${url('/hooks/keepalived')}"`,
      OKOME_NOTIFY_SECRET: `"${SECRET}"`,
      OKOME_NODE: 'pi-b',
      OKOME_INSTANCE: 'UNUSED',
    });
    const run = await runScript(['INSTANCE', 'VI_7', 'BACKUP', '100'], {
      OKOME_NOTIFY_ENV: env,
      OKOME_NOTIFY_FOREGROUND: '1',
    });
    expect(run.code).toBe(0);
    expect(events).toEqual([
      expect.objectContaining({ node: 'pi-b', instance: 'VI_7', state: 'BACKUP', priority: 100 }),
    ]);
    // Two identical transitions within one second are two events, not a replay (the nonce).
    const again = await runScript(['INSTANCE', 'VI_7', 'BACKUP', '100'], {
      OKOME_NOTIFY_ENV: env,
      OKOME_NOTIFY_FOREGROUND: '1',
    });
    expect(again.code).toBe(0);
    expect(events).toHaveLength(2);
  });

  it('returns at once in the background and delivers shortly after', async () => {
    const env = envFile({
      OKOME_NOTIFY_URL: url('/hooks/keepalived'),
      OKOME_NOTIFY_SECRET: SECRET,
      OKOME_INSTANCE: 'VI_1',
    });
    const run = await runScript(['FAULT'], { OKOME_NOTIFY_ENV: env });
    expect(run.code).toBe(0);
    expect(run.ms).toBeLessThan(500);
    const event = await waitFor(() => events[0]);
    expect(event).toMatchObject({ instance: 'VI_1', state: 'FAULT' });
  });

  it('a captured request is handled once; its replay is a duplicate; a tampered body and an old timestamp are refused', async () => {
    const env = envFile({
      OKOME_NOTIFY_URL: url('/capture'),
      OKOME_NOTIFY_SECRET: SECRET,
      OKOME_NODE: 'pi-a',
    });
    const run = await runScript(['STOP', 'VI_1'], { OKOME_NOTIFY_ENV: env, OKOME_NOTIFY_FOREGROUND: '1' });
    expect(run.code).toBe(0);
    const c = captured[0];
    if (c === undefined) throw new Error('nothing captured');
    expect(c.headers['content-type']).toBe('application/json');
    expect(JSON.parse(c.body.toString())).toMatchObject({ node: 'pi-a', instance: 'VI_1', state: 'STOP' });

    expect(await replay(c, '/hooks/keepalived-later')).toMatchObject({
      status: 401,
      error: expect.stringMatching(/window/),
    });
    const tampered = Buffer.from(c.body.toString().replace('"STOP"', '"MASTER"'));
    expect(await replay(c, '/hooks/keepalived', tampered)).toEqual({ status: 401, error: 'bad signature' });
    expect(await replay(c, '/hooks/keepalived')).toMatchObject({ status: 202 });
    // Again: a duplicate (as another replica's copy is), answered 202 and not handed over.
    expect(await replay(c, '/hooks/keepalived')).toEqual({ status: 202, error: undefined });
    expect(events).toHaveLength(1);
  });

  it('a wrong secret is refused by the handler (and reported by the script)', async () => {
    const env = envFile({
      OKOME_NOTIFY_URL: url('/hooks/keepalived'),
      OKOME_NOTIFY_SECRET: 'not-the-secret-at-all',
    });
    const run = await runScript(['MASTER', 'VI_1'], { OKOME_NOTIFY_ENV: env, OKOME_NOTIFY_FOREGROUND: '1' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/not delivered .* HTTP 401/);
    expect(events).toEqual([]);
  });

  it('a node with its own secret signs with it; the shared secret is then refused for that node', async () => {
    const fg = (secret: string) =>
      runScript(['MASTER', 'VI_1'], {
        OKOME_NOTIFY_ENV: envFile({
          OKOME_NOTIFY_URL: url('/hooks/keepalived'),
          OKOME_NOTIFY_SECRET: secret,
          OKOME_NODE: 'pi-c',
        }),
        OKOME_NOTIFY_FOREGROUND: '1',
      });
    expect((await fg(PI_C_SECRET)).stderr).toMatch(/MASTER for VI_1 on pi-c: HTTP 202/);
    expect((await fg(SECRET)).stderr).toMatch(/not delivered .* HTTP 401/);
    expect(events.map((e) => e.node)).toEqual(['pi-c']);
  });

  it('a node the bot does not know is refused 403 and reported for the audit, even when signed', async () => {
    const env = envFile({
      OKOME_NOTIFY_URL: url('/hooks/keepalived'),
      OKOME_NOTIFY_SECRET: SECRET,
      OKOME_NODE: 'evil-node',
    });
    const run = await runScript(['MASTER', 'VI_1'], { OKOME_NOTIFY_ENV: env, OKOME_NOTIFY_FOREGROUND: '1' });
    expect(run.stderr).toMatch(/not delivered .* HTTP 403/);
    expect(events).toEqual([]);
    expect(unknown).toEqual([expect.objectContaining({ node: 'evil-node', status: 403 })]);
  });

  it('several URLs (replicas): the same signed request to each at once, handled once; a dead or hanging one costs no more time', async () => {
    const hangingUrl = `http://127.0.0.1:${(hanging.address() as { port: number }).port}/hooks/keepalived`;
    const deadUrl = `http://127.0.0.1:${await closedPort()}/hooks/keepalived`;
    const env = envFile({
      OKOME_NOTIFY_URL: `"${url('/capture')} ${url('/hooks/keepalived')}"`,
      OKOME_NOTIFY_URLS: `${url('/hooks/keepalived-replica')} ${hangingUrl} ${deadUrl}`,
      OKOME_NOTIFY_SECRET: SECRET,
      OKOME_NODE: 'pi-b',
    });
    const run = await runScript(['MASTER', 'VI_1'], { OKOME_NOTIFY_ENV: env, OKOME_NOTIFY_FOREGROUND: '1' });
    // Delivered (twice over): success, with the two that failed named.
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`HTTP 202 from ${url('/hooks/keepalived')}`);
    expect(run.stderr).toContain(`HTTP 202 from ${url('/hooks/keepalived-replica')}`);
    expect(run.stderr).toMatch(new RegExp(`not delivered to ${hangingUrl} \\(curl exit 28`));
    expect(run.stderr).toMatch(new RegExp(`not delivered to ${deadUrl} \\(curl exit 7`));
    // In parallel: the hanging URL's 2 s and the dead one's retry overlap (one URL alone: < 3.5 s).
    expect(run.ms).toBeLessThan(3500);
    // One transition handled, though two replicas verified it: the same signature, one seen mark.
    expect(events).toEqual([expect.objectContaining({ node: 'pi-b', state: 'MASTER' })]);
    const c = captured[0];
    expect(captured).toHaveLength(1);
    // The captured copy is the request the replicas got: replaying it is one more duplicate.
    if (c === undefined) throw new Error('nothing captured');
    expect(await replay(c, '/hooks/keepalived-replica')).toEqual({ status: 202, error: undefined });
    expect(events).toHaveLength(1);

    const background = await runScript(['BACKUP', 'VI_1'], { OKOME_NOTIFY_ENV: env });
    expect(background.ms).toBeLessThan(500);
    await waitFor(() => (events.length === 2 ? true : undefined));
    expect(events[1]).toMatchObject({ node: 'pi-b', state: 'BACKUP' });
  });

  it('gives up within its 2 s deadline when the bot does not answer', async () => {
    const port = (hanging.address() as { port: number }).port;
    const env = envFile({
      OKOME_NOTIFY_URL: `http://127.0.0.1:${port}/hooks/keepalived`,
      OKOME_NOTIFY_SECRET: SECRET,
    });
    const background = await runScript(['MASTER', 'VI_1'], { OKOME_NOTIFY_ENV: env });
    expect(background.ms).toBeLessThan(500);
    const foreground = await runScript(['MASTER', 'VI_1'], {
      OKOME_NOTIFY_ENV: env,
      OKOME_NOTIFY_FOREGROUND: '1',
    });
    expect(foreground.code).toBe(1);
    expect(foreground.ms).toBeLessThan(3500);
    expect(foreground.stderr).toMatch(/curl exit 28/);
  });

  it('sends nothing for GROUP calls, unknown states, unsafe names or a missing env file', async () => {
    const env = envFile({
      OKOME_NOTIFY_URL: url('/capture'),
      OKOME_NOTIFY_SECRET: SECRET,
      OKOME_NODE: 'pi-a',
    });
    const fg = { OKOME_NOTIFY_ENV: env, OKOME_NOTIFY_FOREGROUND: '1' };
    expect((await runScript(['GROUP', 'G1', 'MASTER', '100'], fg)).code).toBe(0);
    expect((await runScript(['SLEEPING', 'VI_1'], fg)).stderr).toMatch(/unknown state/);
    expect((await runScript(['MASTER', 'VI_1","state":"FAULT'], fg)).stderr).toMatch(
      /bad or missing instance/,
    );
    expect((await runScript(['MASTER'], fg)).stderr).toMatch(/bad or missing instance/);
    const missing = await runScript(['MASTER', 'VI_1'], { ...fg, OKOME_NOTIFY_ENV: join(dir, 'absent.env') });
    expect(missing.code).toBe(0);
    expect(missing.stderr).toMatch(/cannot read/);
    expect(captured).toEqual([]);
  });
});

function runScriptTool(tool: string): Promise<{ code: number }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', `command -v ${tool}`], (error) => resolve({ code: error === null ? 0 : 1 }));
  });
}
