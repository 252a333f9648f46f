import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { type LoopbackConfig, loopbackConfig } from '../support/bot-harness.js';

/** `okome report INCIDENT [--out FILE]` against a store a bot filled, opened read-only. */

let cfg: LoopbackConfig | undefined;
afterEach(() => {
  cfg?.cleanup();
  cfg = undefined;
});

async function okome(args: string[], path: string, cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli([...args, '--config', path], {
    env: {},
    cwd,
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('okome report', () => {
  it('prints an incident report by key or number, writes it with --out, and changes nothing in the store', async () => {
    cfg = await loopbackConfig();
    const store = openSqliteStore({ path: cfg.config.store.path });
    const t0 = Date.parse('2026-12-02T03:12:00Z');
    const { incident } = await store.openOrReuseIncident({
      key: '2:pi-b',
      number: '2',
      title: 'Redis down',
      channel: 'C0INCIDENT',
      requester: 'U0OPS',
      now: t0,
    });
    await store.appendTimeline({
      incidentId: incident.id,
      at: t0,
      kind: 'diagnosis',
      text: 'Opened: Redis on pi-b is down',
      data: {
        evidence: ['redis-ping'],
        checks: [{ id: 'redis-ping', status: 'unreachable', summary: 'refused' }],
      },
    });
    await store.acknowledgeIncident(incident.id, 'U0APPROVER1', t0 + 30_000);
    await store.resolveIncident(incident.id, t0 + 120_000, 'A status found its checks healthy again.');
    await store.appendTimeline({
      incidentId: incident.id,
      at: t0 + 120_000,
      kind: 'resolved',
      text: 'A status found its checks healthy again.',
      data: { cause: 'healthy-status', checks: [{ id: 'redis-ping', status: 'ok', summary: 'PONG' }] },
    });
    await store.close();
    const before = statSync(cfg.config.store.path).mtimeMs;

    const byKey = await okome(['report', '2:pi-b'], cfg.path, cfg.dir);
    expect(byKey.code).toBe(0);
    expect(byKey.stdout).toMatch(/^# Post-incident report: Incident 2: Redis down/);
    expect(byKey.stdout).toContain('| Time to acknowledge | 30 s |');
    expect(byKey.stdout).toContain('| Time to resolve | 2 min 00 s |');
    expect(byKey.stdout).toContain('| redis-ping | unreachable: refused | ok: PONG |');

    const written = await okome(['report', '2', '--out', 'report.md'], cfg.path, cfg.dir);
    expect(written.code).toBe(0);
    expect(written.stdout.trim()).toBe(join(cfg.dir, 'report.md'));
    expect(readFileSync(join(cfg.dir, 'report.md'), 'utf8')).toBe(byKey.stdout);

    const missing = await okome(['report', '7'], cfg.path, cfg.dir);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no incident matches "7"');
    const usage = await okome(['report'], cfg.path, cfg.dir);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('Usage: okome report INCIDENT');
    expect(statSync(cfg.config.store.path).mtimeMs).toBe(before);
  });
});
