import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedConfig } from '../../src/config/load-config.js';
import { SshPool } from '../../src/probes/ssh-pool.js';
import { type ExecuteDeps, executePlan } from '../../src/remediation/execute.js';
import { type ActionPlan, planAction } from '../../src/remediation/plan.js';
import { stopAllLaunched } from '../support/launchers/process-utils.js';
import { type SshdServer, startSshd } from '../support/launchers/sshd.js';
import { fixtureConfig } from '../unit/remediation-fixtures.js';

// Both "Pis" are one real sshd; the commands are harmless stand-ins set through the node
// command overrides, so the test sees what really arrives over SSH and what comes back.
let sshd: SshdServer;
let config: LoadedConfig;
const pools: SshPool[] = [];

beforeAll(async () => {
  sshd = await startSshd();
  config = fixtureConfig((c) => {
    for (const node of c.nodes) {
      node.address = sshd.host;
      node.ssh = {
        port: sshd.port,
        user: sshd.user,
        privateKeyPath: sshd.clientKeyPath,
        hostKey: sshd.hostKeyFingerprint,
      };
      node.commands = {
        serviceRestart: 'echo restarted {service}',
        chaosFlagRemove: 'seq 1 20000',
        firewallFlush: 'ls /nonexistent-okome-dir',
      };
    }
  });
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await stopAllLaunched();
});

function pool(hostKey?: string): SshPool {
  const p = new SshPool(
    new Map(config.nodes.map((n) => [n.name, hostKey ? { ...n, ssh: { ...n.ssh, hostKey } } : n])),
    { connectTimeoutMs: 5000, maxOutputBytes: 1024 * 1024 },
  );
  pools.push(p);
  return p;
}

function plan(actionId: string, nodes: string[]): ActionPlan {
  const r = planAction({ actionId, nodes }, config);
  if (!r.ok) throw new Error(r.reason);
  return r.plan;
}

function deps(shell: SshPool): ExecuteDeps {
  return {
    shell,
    redis: { flushdb: async () => {} },
    verify: async (_checks, nodes) => ({ ok: true, details: `verified ${nodes.join(', ')}` }),
    now: () => performance.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    stepTimeoutMs: 10_000,
    redisTimeoutMs: 1000,
  };
}

describe('executePlan over a real sshd', () => {
  it('runs the configured commands node after node and reports their output', async () => {
    const r = await executePlan(plan('restart-keepalived', ['pi-a', 'pi-b']), deps(pool()));
    expect(r.steps.map((s) => [s.node, s.exitCode, s.stdout.trim()])).toEqual([
      ['pi-a', 0, 'restarted keepalived'],
      ['pi-b', 0, 'restarted keepalived'],
    ]);
    expect(r.gates.map((g) => g.details)).toEqual(['verified pi-a']);
    expect(r.verification?.details).toBe('verified pi-a, pi-b');
    expect(r.ok).toBe(true);
  });

  it('caps a large output for Slack, stops at the failing step with its exit code and stderr', async () => {
    const r = await executePlan(plan('disable-chaos', ['pi-a']), deps(pool()));
    const [big, failed] = r.steps;
    expect(big).toMatchObject({ exitCode: 0, truncated: true, ok: true });
    expect(big?.stdout.length).toBeLessThanOrEqual(2000);
    expect(big?.stdout.startsWith('1\n2\n3\n')).toBe(true);
    expect(big?.stdout.endsWith('19999\n20000\n')).toBe(true);
    expect(failed).toMatchObject({
      exitCode: 2,
      ok: false,
      stderr: expect.stringMatching(/nonexistent-okome-dir/),
    });
    expect(r.notRun.map((w) => w.command)).toEqual([
      expect.stringMatching(/restarted nginx$/),
      expect.stringMatching(/restarted keepalived$/),
    ]);
    expect(r.ok).toBe(false);
  });

  it('a changed host key: the step fails with the code and nothing else is tried', async () => {
    const r = await executePlan(
      plan('restart-keepalived', ['pi-a', 'pi-b']),
      deps(pool(`SHA256:${'A'.repeat(43)}`)),
    );
    expect(r.steps).toHaveLength(1);
    expect(r.steps[0]).toMatchObject({ errorCode: 'OKOME_SSH_HOST_KEY_MISMATCH', exitCode: null });
    expect(r.notRun.map((w) => w.node)).toEqual(['pi-b']);
  });
});
