import { statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { runCli } from '../../src/cli/run-cli.js';
import { finishDrill, startDrill } from '../../src/domain/drill.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import {
  answeringPiHttp,
  type LoopbackConfig,
  loopbackConfig,
  startInProcessBot,
} from '../support/bot-harness.js';
import { drillInput } from '../support/drill-fixtures.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * Runbook coverage from one store: filled by this test (a fixed and verified incident 2, two VIP
 * failovers, then a real diagnosis by the served bot), read by `/okome coverage` through real
 * Bolt and the emulator, and by `okome coverage [--json]` with the store opened read-only.
 */

let emu: SlackEmulator | undefined;
let app: RunningApp | undefined;
let cfg: LoopbackConfig | undefined;
let piHttp: Awaited<ReturnType<typeof answeringPiHttp>> | undefined;

afterEach(async () => {
  await app?.stop({ graceMs: 2000 });
  await emu?.close();
  await piHttp?.close();
  cfg?.cleanup();
  app = undefined;
  emu = undefined;
  piHttp = undefined;
  cfg = undefined;
});

async function okome(args: string[], c: LoopbackConfig) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli([...args, '--config', c.path], {
    env: {},
    cwd: c.dir,
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

const T0 = Date.parse('2026-12-01T03:12:00Z');

/** What an earlier week left: incident 2 fixed and verified, a failover explained, a planned one. */
async function fill(path: string): Promise<void> {
  const store = openSqliteStore({ path });
  const open = async (key: string, number: string, at: number) =>
    (
      await store.openOrReuseIncident({
        key,
        number,
        title: 't',
        channel: 'C0INCIDENT',
        requester: 'bot',
        now: at,
      })
    ).incident;
  const redis = await open('2:pi-b', '2', T0);
  await store.appendTimeline({ incidentId: redis.id, at: T0, kind: 'diagnosis', text: 'Opened', data: {} });
  await store.insertApproval({
    id: 'ap_coverage0000000001',
    incidentId: redis.id,
    actionId: 'restart-redis',
    targets: ['pi-b'],
    commands: [{ node: 'pi-b', command: 'sudo systemctl restart redis-server' }],
    requiredApprovals: 1,
    approvers: [{ user: 'U0APPROVER1', at: T0 + 60_000 }],
    requester: 'U0OPS',
    state: 'succeeded',
    createdAt: T0 + 1000,
    expiresAt: T0 + 600_000,
    startedAt: T0 + 61_000,
    finishedAt: T0 + 70_000,
    rejectedBy: null,
    outcome: 'restarted, verified',
    version: 4,
  });
  await store.appendTimeline({
    incidentId: redis.id,
    at: T0 + 70_000,
    kind: 'outcome',
    text: 'Succeeded',
    data: { verification: { ok: true, attempts: 1, checks: [] } },
  });
  await store.resolveIncident(redis.id, T0 + 80_000, 'A status found its checks healthy again.');
  const failover = async (at: number, cause: string) => {
    const f = await open('failover:pi-a', '4', at);
    await store.appendTimeline({ incidentId: f.id, at, kind: 'notice', text: 'VIP moved', data: {} });
    await store.appendTimeline({
      incidentId: f.id,
      at: at + 5000,
      kind: 'diagnosis',
      text: 'Diagnosed',
      data: { failover: { from: 'pi-a', to: 'pi-b', cause: { kind: cause } } },
    });
    await store.resolveIncident(f.id, at + 60_000, 'VIP back on pi-a.');
  };
  await failover(T0 + 3_600_000, 'keepalived-down');
  await failover(T0 + 7_200_000, 'planned');
  // A redis drill that ran to its end (incident 2 rehearsed); no failover drill yet.
  const drill = await store.insertDrill(drillInput('redis', T0 + 10_800_000));
  const started = startDrill(drill, { ...drill.approval, state: 'approved' }, 'pi-b', T0 + 10_860_000);
  if (!started.ok) throw new Error(started.reason);
  const done = finishDrill(started.next, 'completed', 'detected in 4 s', T0 + 10_920_000);
  if (!done.ok) throw new Error(done.reason);
  if (!(await store.compareAndSetDrill(done.next, drill.version)))
    throw new Error('the drill was not stored');
  await store.close();
}

describe('runbook coverage', () => {
  it('lists all 8 incidents from one store; unseen ones read never (Slack and CLI)', async () => {
    emu = await startSlackEmulator();
    piHttp = await answeringPiHttp();
    const piOverride = piHttp.override;
    cfg = await loopbackConfig((doc) => piOverride(doc));
    await fill(cfg.config.store.path);
    app = await startInProcessBot(cfg.config, emu);
    // A real diagnosis on top: the orchestrator is refused on loopback (incident 5).
    await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
    await emu.waitFor(
      () => emu?.messagesIn('C0INCIDENT').find((m) => m.text.startsWith('Incident 5')),
      10_000,
      'incident 5 opened',
    );

    const { payload } = await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'coverage' }).ack;
    expect(payload).toMatchObject({ response_type: 'ephemeral' });
    const blocks = (
      payload as { blocks: { type: string; text?: { text: string }; fields?: { text: string }[] }[] }
    ).blocks;
    const sections = blocks.filter((b) => b.type === 'section');
    expect(sections.map((s) => /^\*Incident (\w+) /.exec(s.text?.text ?? '')?.[1])).toEqual([
      '1',
      '2',
      '3',
      '4',
      '5',
      '5b',
      '6',
      '7',
    ]);
    const field = (n: string, label: string) =>
      sections
        .find((s) => s.text?.text.startsWith(`*Incident ${n} `))
        ?.fields?.find((f) => f.text.startsWith(`*${label}*`))?.text ?? '';
    // Redis is closed on loopback: the status saw incident 2 again, as a new incident.
    expect(field('2', 'Last seen')).toContain('2 incidents');
    expect(field('2', 'Last fixed')).toContain('2026-12-01 03:13 UTC');
    expect(field('2', 'Last verified')).toContain('2026-12-01 03:13 UTC');
    expect(field('5', 'Last seen')).not.toContain('never');
    for (const n of ['5b', '6', '7']) expect(field(n, 'Last seen')).toBe('*Last seen*\n_never_');
    expect(field('2', 'Last drill')).toBe('*Last drill*\n2026-12-01 06:14 UTC: redis, completed');
    for (const n of ['1', '3', '4', '5', '5b', '6', '7']) expect(field(n, 'Last drill')).toContain('_never_');
    expect(field('4', 'Last drill')).toContain('drill: `failover`');
    expect(JSON.stringify(blocks)).toContain('VIP failovers: 2');
    await app.stop({ graceMs: 2000 });
    app = undefined;

    // The terminal, on the same store, read-only.
    const before = statSync(cfg.config.store.path).mtimeMs;
    const text = await okome(['coverage'], cfg);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^OKOME runbook coverage/);
    expect(text.stdout.match(/^Incident /gm)).toHaveLength(8);
    expect(text.stdout).toMatch(
      /Incident 7 — Chaos test triggered accidentally\n(.*\n){3} {2}last seen {6}never\n {2}last fixed {5}never\n {2}last verified {2}never\n {2}last drill {5}never/,
    );
    const json = await okome(['coverage', '--json'], cfg);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as {
      incidents: {
        number: string;
        seen: number;
        lastSeen: unknown;
        lastFixed: string | null;
        lastDrill: unknown;
        alertRules: string[];
      }[];
      failovers: unknown;
    };
    expect(parsed.incidents.map((i) => i.number)).toEqual(['1', '2', '3', '4', '5', '5b', '6', '7']);
    expect(parsed.incidents.find((i) => i.number === '2')?.lastFixed).toBe('2026-12-01T03:13:10.000Z');
    expect(parsed.incidents.find((i) => i.number === '6')).toMatchObject({
      lastSeen: null,
      lastFixed: null,
      lastDrill: null,
      alertRules: ['RedisHitRatioLow', 'RedisBudgetRunaway'],
    });
    // The keepalived failover counts for incident 3, the planned one for none, neither as incident 4
    // (which counts only the real diagnosis's incidents of that number, if the status saw one).
    const stored = openSqliteStore({ path: cfg.config.store.path, readOnly: true });
    const keys = (await stored.incidentCoverage()).map((r) => r.key);
    await stored.close();
    const withNumber = (n: string) => keys.filter((k) => k === n || k.startsWith(`${n}:`)).length;
    const seen = (n: string) => parsed.incidents.find((i) => i.number === n)?.seen;
    expect(keys.filter((k) => k.startsWith('failover:'))).toHaveLength(2);
    expect(seen('3')).toBe(withNumber('3') + 1);
    expect(seen('4')).toBe(withNumber('4'));
    expect(parsed.failovers).toMatchObject({ count: 2, last: { key: 'failover:pi-a', cause: 'planned' } });
    expect(statSync(cfg.config.store.path).mtimeMs).toBe(before);
    const usage = await okome(['coverage', 'now'], cfg);
    expect(usage.code).toBe(2);
  });
});
