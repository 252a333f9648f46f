import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newApproval } from '../../src/domain/approval.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { type LoopbackConfig, loopbackConfig } from '../support/bot-harness.js';
import { type SlackEmulator, startSlackEmulator, waitFor } from '../support/slack-emulator/index.js';

/**
 * One serving process per store (issue 16 point 2), with the built CLI as operators run it: a
 * second `okome serve` on the same file refuses to start and names the first one's PID, before
 * its start-up recovery could mark the first one's running approval interrupted; `okome audit`
 * reads the store meanwhile; a holder killed with SIGKILL leaves no lock behind.
 */

const ROOT = join(import.meta.dirname, '../..');

let emu: SlackEmulator | undefined;
let cfg: LoopbackConfig | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await emu?.close();
  cfg?.cleanup();
  emu = cfg = undefined;
});

interface Run {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
}

function okome(args: readonly string[], env: NodeJS.ProcessEnv = {}): Run {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SLACK_') && !k.startsWith('OKOME_')),
  );
  const child = spawn(process.execPath, [join(ROOT, 'dist/cli/okome.js'), ...args], {
    env: { ...clean, OKOME_LOG_LEVEL: 'warn', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

/** Resolves once the bot serves or has exited, whichever comes first. */
async function startedOrExited(run: Run): Promise<'serving' | 'exited'> {
  return waitFor(
    () => (run.child.exitCode !== null ? 'exited' : run.output().includes('okome serving') && 'serving'),
    25_000,
    'okome serve to start or exit',
  );
}

async function approvalState(path: string, id: string): Promise<string | undefined> {
  const store = openSqliteStore({ path, readOnly: true });
  try {
    return (await store.approvalById(id))?.state;
  } finally {
    await store.close();
  }
}

describe('one okome serve per store', () => {
  it('refuses a second bot naming the first one’s PID; audit reads beside it; SIGKILL leaves no lock', async () => {
    emu = await startSlackEmulator();
    cfg = await loopbackConfig();
    const storePath = cfg.config.store.path;
    const env = { SLACK_BOT_TOKEN: 'xoxb-test', SLACK_APP_TOKEN: 'xapp-test', SLACK_API_URL: emu.apiUrl };
    const serve = ['serve', '--config', cfg.path];

    const a = okome(serve, env);
    expect(await startedOrExited(a), a.output()).toBe('serving');

    // A's run in progress, as its approvals service records one.
    const writer = openSqliteStore({ path: storePath });
    const { incident } = await writer.openOrReuseIncident({
      key: '1:pi-a',
      number: '1',
      title: 'nginx down on pi-a',
      channel: 'C0INCIDENT',
      requester: 'U0REQUEST',
      now: Date.now(),
    });
    const pending = newApproval({
      id: 'ap_running01',
      incidentId: incident.id,
      actionId: 'restart-nginx',
      targets: ['pi-a'],
      commands: [{ node: 'pi-a', command: 'sudo systemctl restart nginx' }],
      requiredApprovals: 1,
      requester: 'U0REQUEST',
      now: Date.now(),
      ttlMs: 600_000,
    });
    await writer.insertApproval({ ...pending, state: 'running', startedAt: Date.now() });
    await writer.close();

    const b = okome(serve, env);
    const outcome = await startedOrExited(b);
    expect(outcome, `the second bot should refuse, it said: ${b.output()}`).toBe('exited');
    expect(await b.exited).toBe(2);
    expect(b.output()).toContain('OKOME_SERVE_LOCK_HELD');
    expect(b.output()).toContain(`PID ${a.child.pid}`);
    expect(b.output()).not.toMatch(/\n\s+at \S/);
    // B never reached its start-up recovery: A's run is still A's.
    expect(await approvalState(storePath, 'ap_running01')).toBe('running');
    expect(a.child.exitCode).toBe(null);

    const audit = okome(['audit', '--json', '--config', cfg.path]);
    expect(await audit.exited, audit.output()).toBe(0);
    expect(JSON.parse(audit.output())).toBeInstanceOf(Array);

    // A crash keeps no lock: the kernel drops it with the process.
    a.child.kill('SIGKILL');
    await a.exited;
    const c = okome(serve, env);
    expect(await startedOrExited(c), c.output()).toBe('serving');
    // The restart's recovery is the holder's to run: A's run is now interrupted, said so.
    expect(await approvalState(storePath, 'ap_running01')).toBe('interrupted');
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);

    // And a clean stop released it too.
    const d = okome(serve, env);
    expect(await startedOrExited(d), d.output()).toBe('serving');
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  }, 90_000);

  it('okome audit opens the store read-only: no database yet is an error, and none is created', async () => {
    cfg = await loopbackConfig();
    const audit = okome(['audit', '--config', cfg.path]);
    expect(await audit.exited).toBe(2);
    expect(audit.output()).toContain('OKOME_STORE_FAILED');
    expect(audit.output()).toContain('`okome serve` creates it');
    expect(existsSync(cfg.config.store.path)).toBe(false);
  });
});
