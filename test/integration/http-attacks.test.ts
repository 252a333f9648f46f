import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NODE_HEADER,
  SIGNATURE_HEADER,
  signHook,
  TIMESTAMP_HEADER,
} from '../../src/alerts/keepalived-hook.js';
import { type LoopbackConfig, loopbackConfig } from '../support/bot-harness.js';
import { type AttackOutcome, attack, memoryOf, requestHead, trickle } from '../support/http-attacker.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * The attacks of issue 15 against the built bot (`node dist/cli/okome.js serve`, its own
 * process, so its memory is its own), in Socket Mode (the hooks' server) and in HTTP mode (Slack's
 * receiver on the same server). Short timeouts in the configuration keep the file quick; the
 * connection counts and sizes are the ones measured against the unbounded bot.
 */

const ROOT = join(import.meta.dirname, '../..');
const SHARED_SECRET = 'shared-keepalived-secret-0123';
const PI_A_SECRET = 'pi-a-own-keepalived-secret-01';
const SIGNING_SECRET = 'testsecret123';
const LIMITS = { headersTimeoutMs: 1000, requestTimeoutMs: 2000, keepAliveTimeoutMs: 1000 };
/** Node checks the two timeouts on a tick (a quarter of the shorter, at most 1 s); plus scheduling slack. */
const CUT_SLACK_MS = 1500;
const RSS_BUDGET_MB = 20;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Bot {
  readonly child: ChildProcess;
  readonly port: number;
  readonly cfg: LoopbackConfig;
  readonly output: () => string;
  stop(): Promise<void>;
}

/** The built CLI, as `npm start` runs it (same V8 flags), with only the environment given. */
async function startBuiltBot(emu: SlackEmulator, env: Record<string, string>): Promise<Bot> {
  const port = await freePort();
  const cfg = await loopbackConfig((doc) => {
    doc.http = { port, host: '127.0.0.1', ...LIMITS };
    doc.alerts = { vipWatch: { enabled: false } };
    const nodes = doc.nodes as Array<Record<string, unknown>>;
    if (nodes[0] !== undefined) nodes[0].hookSecretEnv = 'OKOME_HOOK_PI_A';
  });
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SLACK_') && !k.startsWith('OKOME_')),
  );
  const child = spawn(
    process.execPath,
    ['--max-semi-space-size=2', join(ROOT, 'dist/cli/okome.js'), 'serve', '--config', cfg.path],
    {
      env: {
        ...clean,
        OKOME_LOG_LEVEL: 'error',
        SLACK_BOT_TOKEN: 'xoxb-test',
        SLACK_API_URL: emu.apiUrl,
        OKOME_KEEPALIVED_SECRET: SHARED_SECRET,
        OKOME_HOOK_PI_A: PI_A_SECRET,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await emu.waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`the bot exited: ${output}`);
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200;
      } catch {
        return false;
      }
    },
    20_000,
    'the built bot answering /healthz',
  );
  return {
    child,
    port,
    cfg,
    output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      cfg.cleanup();
    },
  };
}

/** Fetches /healthz back to back (paced) while an attack runs: every answer's latency. */
function watchHealth(port: number): { stop(): Promise<{ latencies: number[]; failures: string[] }> } {
  let running = true;
  const latencies: number[] = [];
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(3000) });
        await r.text();
        if (r.status !== 200) failures.push(`status ${r.status}`);
      } catch (error) {
        failures.push(error instanceof Error ? error.message : String(error));
      }
      latencies.push(performance.now() - t0);
      // Pacing for the sampler only: nothing waits on it.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { latencies, failures };
    },
  };
}

/** Resets the process's peak RSS (Linux clear_refs 5), so VmHWM is the peak from now on. */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

function signedHookHeaders(node: string, secret: string, body: string): Record<string, string> {
  const ts = Math.floor(Date.now() / 1000);
  return {
    'content-type': 'application/json',
    [TIMESTAMP_HEADER]: String(ts),
    [NODE_HEADER]: node,
    [SIGNATURE_HEADER]: signHook(secret, ts, node, body),
  };
}

const hookBody = (node: string, nonce: string) =>
  JSON.stringify({ node, instance: 'VI_1', state: 'BACKUP', nonce });

function expectCut(outcomes: readonly AttackOutcome[], statuses: readonly number[], withinMs: number): void {
  for (const o of outcomes) {
    expect(o.abandoned, 'the server never closed the connection').toBe(false);
    if (o.status !== undefined) expect(statuses).toContain(o.status);
    expect(o.closedAfterMs).toBeLessThanOrEqual(withinMs);
  }
}

let emu: SlackEmulator;

beforeAll(async () => {
  // The built bot is what runs in production: build it from this tree first.
  execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  emu = await startSlackEmulator();
}, 120_000);

afterAll(async () => {
  await emu?.close();
});

describe('the built bot in Socket Mode: the hooks server', () => {
  let bot: Bot;
  beforeAll(async () => {
    bot = await startBuiltBot(emu, { SLACK_APP_TOKEN: 'xapp-test' });
  });
  afterAll(async () => {
    await bot?.stop();
  });

  it('300 stalled 1 MB hook bodies, trickled bodies and half-sent headers: bounded memory, cut on time, /healthz answers', async () => {
    const { port } = bot;
    const pid = bot.child.pid ?? 0;
    const declared = 1_048_576;
    const mostOf = Buffer.alloc(1_040_000, 0x7b);
    const giveUpMs = LIMITS.requestTimeoutMs * 4;
    const stalledBody = () =>
      attack({
        port,
        from: '127.0.0.2',
        giveUpMs,
        send: (s) => {
          s.write(
            requestHead('POST', '/hooks/keepalived', {
              'content-type': 'application/json',
              'content-length': declared,
            }),
          );
          s.write(mostOf);
        },
      });
    // Warm: the paths the storm takes have run (JIT, heap and allocator sized), on a tenth of it.
    await Promise.all(Array.from({ length: 30 }, stalledBody));
    for (let i = 0; i < 10; i += 1) await fetch(`http://127.0.0.1:${port}/healthz`);
    resetPeak(pid);
    const baseline = memoryOf(pid, (p) => readFileSync(p, 'utf8')).rssMb;
    const health = watchHealth(port);

    const stalledBodies = Array.from({ length: 300 }, stalledBody);
    // Signed-looking headers pass the screen, so the server waits for a body that never ends.
    const trickled = Array.from({ length: 20 }, (_, i) =>
      attack({
        port,
        from: '127.0.0.3',
        giveUpMs,
        send: (s) => {
          const body = hookBody('pi-b', `t${i}`);
          s.write(
            requestHead('POST', '/hooks/keepalived', {
              ...signedHookHeaders('pi-b', SHARED_SECRET, body),
              'content-length': 4000,
            }),
          );
          trickle(s, 'x'.repeat(4000), 100);
        },
      }),
    );
    const halfHeaders = Array.from({ length: 30 }, () =>
      attack({
        port,
        from: '127.0.0.4',
        giveUpMs,
        send: (s) => {
          s.write('POST /hooks/keepalived HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ');
          trickle(s, 'a'.repeat(1000), 100);
        },
      }),
    );
    const hugeHeaders = Array.from({ length: 20 }, () =>
      attack({
        port,
        from: '127.0.0.5',
        giveUpMs,
        send: (s) => {
          s.write(requestHead('GET', '/healthz', { 'x-big': 'b'.repeat(32 * 1024) }));
        },
      }),
    );

    const [bodies, trickles, halves, huge] = await Promise.all([
      Promise.all(stalledBodies),
      Promise.all(trickled),
      Promise.all(halfHeaders),
      Promise.all(hugeHeaders),
    ]);
    const { latencies, failures } = await health.stop();
    const memory = memoryOf(pid, (p) => readFileSync(p, 'utf8'));
    console.log(
      `socket mode: baseline ${baseline.toFixed(1)} MB, peak ${memory.peakMb.toFixed(1)} MB; ` +
        `healthz max ${Math.max(...latencies).toFixed(0)} ms over ${latencies.length}; ` +
        `stalled bodies closed by ${Math.max(...bodies.map((b) => b.closedAfterMs)).toFixed(0)} ms ` +
        `(${bodies.filter((b) => b.status === 413).length} answered 413, the rest cut as accepted), ` +
        `trickles ${Math.max(...trickles.map((b) => b.closedAfterMs)).toFixed(0)} ms, ` +
        `half headers ${Math.max(...halves.map((b) => b.closedAfterMs)).toFixed(0)} ms`,
    );

    expectCut(bodies, [413], LIMITS.requestTimeoutMs + CUT_SLACK_MS);
    expect(bodies.filter((b) => b.status === 413).length).toBeGreaterThan(0);
    expectCut(trickles, [408], LIMITS.requestTimeoutMs + CUT_SLACK_MS);
    expectCut(halves, [408], LIMITS.headersTimeoutMs + CUT_SLACK_MS);
    expect(huge.map((h) => h.status)).toEqual(huge.map(() => 431));
    expect(failures).toEqual([]);
    expect(Math.max(...latencies)).toBeLessThan(1000);
    expect(memory.peakMb).toBeLessThanOrEqual(baseline + RSS_BUDGET_MB);
    // Still serving after the storm.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('a signed notify from a node the configuration does not name is refused 403 and audited', async () => {
    const body = hookBody('evil-node', 'e1');
    const r = await fetch(`http://127.0.0.1:${bot.port}/hooks/keepalived`, {
      method: 'POST',
      headers: signedHookHeaders('evil-node', SHARED_SECRET, body),
      body,
    });
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: string }).error).toBe('unknown node evil-node');
    const db = new Database(bot.cfg.config.store.path, { readonly: true, fileMustExist: true });
    try {
      const row = await emu.waitFor(
        () =>
          db
            .prepare(
              "SELECT actor, event, verdict, code, approval_id, incident_id FROM audit WHERE code = 'unknown-node'",
            )
            .get() as Record<string, unknown> | undefined,
        5000,
        'the audit entry',
      );
      expect(row).toEqual({
        actor: 'keepalived:evil-node',
        event: 'keepalived-notify',
        verdict: 'refused',
        code: 'unknown-node',
        approval_id: null,
        incident_id: null,
      });
    } finally {
      db.close();
    }
    expect(emu.messagesIn('C0INCIDENT').filter((m) => m.text.includes('evil-node'))).toEqual([]);
  });

  it('pi-a signs with its own secret (the shared one is refused for it); pi-b with the shared one', async () => {
    const post = async (node: string, secret: string, nonce: string) => {
      const body = hookBody(node, nonce);
      const r = await fetch(`http://127.0.0.1:${bot.port}/hooks/keepalived`, {
        method: 'POST',
        headers: signedHookHeaders(node, secret, body),
        body,
      });
      return r.status;
    };
    expect(await post('pi-a', PI_A_SECRET, 'a1')).toBe(202);
    expect(await post('pi-a', SHARED_SECRET, 'a2')).toBe(401);
    expect(await post('pi-b', SHARED_SECRET, 'b1')).toBe(202);
    expect(await post('pi-b', PI_A_SECRET, 'b2')).toBe(401);
  });
});

describe('the built bot in HTTP mode: Slack requests on the same bounded server', () => {
  let bot: Bot;
  beforeAll(async () => {
    bot = await startBuiltBot(emu, { SLACK_SIGNING_SECRET: SIGNING_SECRET });
  });
  afterAll(async () => {
    await bot?.stop();
  });

  it('60 unsigned 4 MB bodies (declared and chunked) and trickled events: bounded memory, /healthz answers, signed requests still work', async () => {
    const { port } = bot;
    const pid = bot.child.pid ?? 0;
    const url = `http://127.0.0.1:${port}/slack/events`;
    for (let i = 0; i < 5; i += 1) {
      const ok = await emu.httpSlash(url, SIGNING_SECRET, { userId: 'U1', channelId: 'C0OPS', text: 'help' });
      expect(ok.status).toBe(200);
    }
    resetPeak(pid);
    const baseline = memoryOf(pid, (p) => readFileSync(p, 'utf8')).rssMb;
    const health = watchHealth(port);

    const fourMb = Buffer.alloc(4 * 1_048_576, 0x61);
    const giveUpMs = LIMITS.requestTimeoutMs * 4;
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const declared = Array.from({ length: 40 }, () =>
      attack({
        port,
        from: '127.0.0.6',
        giveUpMs,
        send: (s) => {
          s.write(requestHead('POST', '/slack/events', { ...form, 'content-length': fourMb.length }));
          s.write(fourMb);
        },
      }),
    );
    const chunked = Array.from({ length: 20 }, () =>
      attack({
        port,
        from: '127.0.0.6',
        giveUpMs,
        send: (s) => {
          s.write(requestHead('POST', '/slack/events', { ...form, 'transfer-encoding': 'chunked' }));
          s.write(`${fourMb.length.toString(16)}\r\n`);
          s.write(fourMb);
        },
      }),
    );
    const trickled = Array.from({ length: 20 }, () =>
      attack({
        port,
        from: '127.0.0.7',
        giveUpMs,
        send: (s) => {
          s.write(requestHead('POST', '/slack/events', { ...form, 'content-length': 60_000 }));
          trickle(s, 'payload='.padEnd(60_000, 'x'), 100);
        },
      }),
    );
    const [big, streamed, trickles] = await Promise.all([
      Promise.all(declared),
      Promise.all(chunked),
      Promise.all(trickled),
    ]);
    const { latencies, failures } = await health.stop();
    const memory = memoryOf(pid, (p) => readFileSync(p, 'utf8'));
    console.log(
      `HTTP mode: baseline ${baseline.toFixed(1)} MB, peak ${memory.peakMb.toFixed(1)} MB; ` +
        `healthz max ${Math.max(...latencies).toFixed(0)} ms over ${latencies.length}; ` +
        `${[...big, ...streamed].filter((b) => b.status === 413).length} of 60 answered 413, the rest cut`,
    );

    expectCut(big, [413], LIMITS.requestTimeoutMs + CUT_SLACK_MS);
    expect(big.filter((b) => b.status === 413).length).toBeGreaterThan(0);
    expectCut(streamed, [413], LIMITS.requestTimeoutMs + CUT_SLACK_MS);
    expectCut(trickles, [408], LIMITS.requestTimeoutMs + CUT_SLACK_MS);
    expect(failures).toEqual([]);
    expect(Math.max(...latencies)).toBeLessThan(1000);
    expect(memory.peakMb).toBeLessThanOrEqual(baseline + RSS_BUDGET_MB);
    const after = await emu.httpSlash(url, SIGNING_SECRET, {
      userId: 'U1',
      channelId: 'C0OPS',
      text: 'help',
    });
    expect(after.status).toBe(200);
  });
});
