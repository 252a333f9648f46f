import { describe, expect, it } from 'vitest';
import { defaultCommands } from '../../src/config/schema.js';
import { ErrorCode, OkomeError } from '../../src/errors.js';
import type { ExecOptions, ExecResult } from '../../src/probes/ports.js';
import { capText, type ExecuteDeps, executePlan, type VerifyResult } from '../../src/remediation/execute.js';
import { type ActionPlan, planAction } from '../../src/remediation/plan.js';
import { fixtureConfig } from './remediation-fixtures.js';

const config = fixtureConfig();
const FLUSH = defaultCommands.firewallFlush;

function plan(actionId: string, nodes: string[], change?: Partial<ActionPlan>): ActionPlan {
  const r = planAction({ actionId, nodes }, config);
  if (!r.ok) throw new Error(r.reason);
  return { ...r.plan, ...change };
}

const ok = (stdout = '', extra: Partial<ExecResult> = {}): ExecResult => ({
  exitCode: 0,
  signal: undefined,
  stdout,
  stderr: '',
  durationMs: 5,
  truncated: false,
  ...extra,
});

type Script = (node: string, command: string) => ExecResult | Error;

/** A fake NodeShell on a fake clock: each exec takes 100 ms; sleeps advance the clock. */
function harness(script: Script = () => ok(), verifyResults: VerifyResult[] = []) {
  let now = 0;
  let running = 0;
  let maxConcurrent = 0;
  const calls: Array<{ node: string; command: string; options: ExecOptions; at: number }> = [];
  const verifyCalls: Array<{ checks: readonly string[]; nodes: readonly string[]; at: number }> = [];
  let flushes = 0;
  let flushError: Error | undefined;
  const deps: ExecuteDeps = {
    shell: {
      async exec(node, command, options) {
        calls.push({ node, command, options, at: now });
        running += 1;
        maxConcurrent = Math.max(maxConcurrent, running);
        // Yield a macrotask so concurrent execs overlap; time is the fake clock, not a wall sleep.
        await new Promise((r) => setImmediate(r));
        now += 100;
        running -= 1;
        const r = script(node, command);
        if (r instanceof Error) throw r;
        return r;
      },
    },
    redis: {
      async flushdb() {
        flushes += 1;
        if (flushError) throw flushError;
      },
    },
    async verify(checks, nodes) {
      verifyCalls.push({ checks, nodes, at: now });
      now += 50;
      return verifyResults.shift() ?? { ok: true, details: 'all checks pass' };
    },
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
    stepTimeoutMs: 30_000,
    redisTimeoutMs: 1500,
  };
  return {
    deps,
    calls,
    verifyCalls,
    get maxConcurrent() {
      return maxConcurrent;
    },
    get flushes() {
      return flushes;
    },
    failFlush(e: Error) {
      flushError = e;
    },
  };
}

describe('executePlan', () => {
  it('runs the steps, reports each, then verifies', async () => {
    const h = harness((_n, c) => ok(`ran ${c}`));
    const r = await executePlan(plan('restart-nginx', ['pi-a']), h.deps);
    expect(h.calls.map((c) => [c.node, c.command, c.options.timeoutMs])).toEqual([
      ['pi-a', 'sudo systemctl restart nginx', 30_000],
    ]);
    expect(r.steps).toEqual([
      {
        node: 'pi-a',
        kind: 'ssh',
        label: 'restart nginx',
        command: 'sudo systemctl restart nginx',
        exitCode: 0,
        stdout: 'ran sudo systemctl restart nginx',
        stderr: '',
        durationMs: 100,
        truncated: false,
        ok: true,
        errorCode: undefined,
      },
    ]);
    expect(h.verifyCalls).toEqual([{ checks: ['vip-http', 'service'], nodes: ['pi-a'], at: 100 }]);
    expect(r).toMatchObject({ ok: true, dryRun: false, notRun: [], durationMs: 150 });
    expect(r.verification).toMatchObject({ ok: true, attempts: 1 });
    expect(r.summary).toBe('✅ restart nginx on pi-a: 1 step(s) ran, verified (0.2 s)');
  });

  it('stops a node at its first failing step and does not verify', async () => {
    const h = harness((_n, c) =>
      c.includes('iptables') ? ok('', { exitCode: 1, stderr: 'iptables: Permission denied' }) : ok(),
    );
    const r = await executePlan(plan('disable-chaos', ['pi-a']), h.deps);
    expect(h.calls.map((c) => c.command)).toEqual(['sudo rm -f /etc/okome/CHAOS_ENABLE', FLUSH]);
    expect(r.steps.map((s) => [s.command, s.exitCode, s.ok])).toEqual([
      ['sudo rm -f /etc/okome/CHAOS_ENABLE', 0, true],
      [FLUSH, 1, false],
    ]);
    expect(r.notRun.map((w) => w.command)).toEqual([
      'sudo systemctl restart nginx',
      'sudo systemctl restart keepalived',
    ]);
    expect(r.verification).toBeUndefined();
    expect(h.verifyCalls).toEqual([]);
    expect(r.ok).toBe(false);
    expect(r.summary).toMatch(/^❌ flush iptables on pi-a failed \(exit 1\); 2 step\(s\) not run/);
  });

  it('an SSH error is a failed step with its code; nothing else runs', async () => {
    const h = harness(() => new OkomeError(ErrorCode.SshHostKeyMismatch, 'host key SHA256:x does not match'));
    const r = await executePlan(plan('restart-keepalived', ['pi-a', 'pi-b']), h.deps);
    expect(r.steps).toHaveLength(1);
    expect(r.steps[0]).toMatchObject({
      exitCode: null,
      ok: false,
      errorCode: 'OKOME_SSH_HOST_KEY_MISMATCH',
      stderr: 'host key SHA256:x does not match (nothing was sent)',
    });
    expect(r.notRun.map((w) => w.node)).toEqual(['pi-b']);
  });

  it('a timeout says the command may still be running', async () => {
    const h = harness(() => new OkomeError(ErrorCode.SshExecTimeout, 'timed out'));
    const r = await executePlan(plan('restart-nginx', ['pi-a']), h.deps);
    expect(r.steps[0]?.stderr).toMatch(/may still be running on pi-a/);
  });

  it('a command killed by a signal is a failure and says so', async () => {
    const h = harness(() => ok('', { exitCode: null, signal: 'KILL' }));
    const r = await executePlan(plan('restart-nginx', ['pi-a']), h.deps);
    expect(r.steps[0]).toMatchObject({ ok: false, exitCode: null, stderr: '(killed by KILL)' });
  });

  it('sequential: the second node only once the first verified; never both at once', async () => {
    const h = harness();
    const r = await executePlan(plan('restart-keepalived', ['pi-a', 'pi-b']), h.deps);
    expect(h.maxConcurrent).toBe(1);
    expect(h.calls.map((c) => [c.node, c.at])).toEqual([
      ['pi-a', 0],
      ['pi-b', 150],
    ]);
    expect(h.verifyCalls.map((v) => v.nodes)).toEqual([['pi-a'], ['pi-a', 'pi-b']]);
    expect(r.gates).toHaveLength(1);
    expect(r.ok).toBe(true);
  });

  it('sequential: when the first node does not come back, the second is not touched', async () => {
    const h = harness(
      () => ok(),
      Array.from({ length: 100 }, () => ({ ok: false, details: 'no VIP holder' })),
    );
    const r = await executePlan(plan('restart-keepalived', ['pi-a', 'pi-b']), h.deps);
    expect(h.calls.map((c) => c.node)).toEqual(['pi-a']);
    expect(r.notRun.map((w) => w.node)).toEqual(['pi-b']);
    expect(r.gates[0]).toMatchObject({ ok: false, details: 'no VIP holder' });
    // 10 s window, 1 s apart, each attempt 50 ms: attempts until the next would pass the window.
    expect(r.gates[0]?.attempts).toBe(10);
    expect(r.ok).toBe(false);
    expect(r.summary).toMatch(/pi-a did not come back \(no VIP holder\); 1 step\(s\) not run/);
  });

  it('parallel plans of non-VIP nodes run at the same time', async () => {
    const cfg = fixtureConfig((c) => {
      for (const n of c.nodes) n.holdsVip = false;
      const a = c.actions?.find((x) => x.id === 'restart-keepalived');
      if (a) a.sequential = false;
    });
    const r0 = planAction({ actionId: 'restart-keepalived', nodes: ['pi-a', 'pi-b'] }, cfg);
    if (!r0.ok) throw new Error(r0.reason);
    const h = harness();
    const r = await executePlan(r0.plan, h.deps);
    expect(h.maxConcurrent).toBe(2);
    expect(r.gates).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('verification polls until the state settles', async () => {
    const h = harness(
      () => ok(),
      [
        { ok: false, details: 'VIP on pi-b' },
        { ok: false, details: 'VIP on pi-b' },
        { ok: true, details: 'VIP back on pi-a' },
      ],
    );
    const r = await executePlan(plan('restart-nginx', ['pi-a']), h.deps);
    expect(r.verification).toMatchObject({ ok: true, attempts: 3, details: 'VIP back on pi-a' });
    expect(h.verifyCalls.map((v) => v.at)).toEqual([100, 1150, 2200]);
  });

  it('a verification that throws counts as not yet, and is retried', async () => {
    const h = harness();
    let n = 0;
    const deps: ExecuteDeps = {
      ...h.deps,
      verify: async () => {
        n += 1;
        if (n === 1) throw new Error('probe exploded');
        return { ok: true, details: 'fine' };
      },
    };
    const r = await executePlan(plan('restart-nginx', ['pi-a']), deps);
    expect(r.verification).toMatchObject({ ok: true, attempts: 2 });
  });

  it('failed verification makes the whole run fail, with the details', async () => {
    const h = harness(
      () => ok(),
      Array.from({ length: 100 }, () => ({ ok: false, details: 'nginx inactive' })),
    );
    const r = await executePlan(plan('restart-nginx', ['pi-a']), h.deps);
    expect(r.ok).toBe(false);
    expect(r.summary).toMatch(/verification failed after 10 attempt\(s\): nginx inactive/);
  });

  it('no verification checks configured: says so', async () => {
    const h = harness();
    const r = await executePlan(
      plan('restart-nginx', ['pi-a'], { verify: { checks: [], windowMs: 1000 } }),
      h.deps,
    );
    expect(r.verification).toBeUndefined();
    expect(h.verifyCalls).toEqual([]);
    expect(r.summary).toMatch(/no verification checks configured/);
  });

  it('FLUSHDB goes through the Redis client; its failure is reported', async () => {
    const h = harness();
    const r = await executePlan(plan('flush-redis', ['pi-b']), h.deps);
    expect(h.flushes).toBe(1);
    expect(h.calls).toEqual([]);
    expect(r.steps[0]).toMatchObject({ kind: 'redis-flushdb', ok: true, stdout: 'OK' });

    const h2 = harness();
    h2.failFlush(new OkomeError(ErrorCode.ProbeTimeout, 'redis timed out'));
    const r2 = await executePlan(plan('flush-redis', ['pi-b']), h2.deps);
    expect(r2.steps[0]).toMatchObject({ ok: false, errorCode: 'OKOME_PROBE_TIMEOUT' });
    expect(r2.ok).toBe(false);
  });

  it('caps what is returned for Slack, keeping head and tail, and says it was cut', async () => {
    const big = `${'x'.repeat(5000)}THE-END`;
    const h = harness(() => ok(big, { stderr: 'short' }));
    const r = await executePlan(plan('restart-nginx', ['pi-a']), h.deps);
    const step = r.steps[0];
    expect(step?.stdout.length).toBeLessThanOrEqual(2000);
    expect(step?.stdout).toMatch(/characters cut/);
    expect(step?.stdout.endsWith('THE-END')).toBe(true);
    expect(step?.stderr).toBe('short');
    expect(step?.truncated).toBe(true);

    const h2 = harness(() => ok('small', { truncated: true }));
    expect((await executePlan(plan('restart-nginx', ['pi-a']), h2.deps)).steps[0]?.truncated).toBe(true);
  });

  it('dry-run (global or per action) lists the exact commands and hosts and runs nothing', async () => {
    for (const [p, global] of [
      [plan('disable-chaos', ['pi-a']), true],
      [plan('disable-chaos', ['pi-a'], { dryRun: true }), false],
    ] as const) {
      const h = harness();
      const r = await executePlan(p, global ? { ...h.deps, dryRun: true } : h.deps);
      expect(h.calls).toEqual([]);
      expect(h.verifyCalls).toEqual([]);
      expect(r).toMatchObject({ dryRun: true, ok: true, steps: [] });
      expect(r.wouldRun.map((w) => `${w.node} ${w.address}: ${w.command}`)).toEqual([
        'pi-a 10.86.0.20: sudo rm -f /etc/okome/CHAOS_ENABLE',
        `pi-a 10.86.0.20: ${FLUSH}`,
        'pi-a 10.86.0.20: sudo systemctl restart nginx',
        'pi-a 10.86.0.20: sudo systemctl restart keepalived',
      ]);
      expect(r.summary).toMatch(global ? /global setting/ : /action setting/);
      expect(r.summary).toMatch(/nothing ran$/);
    }
  });

  it('an abort stops before the next step', async () => {
    const controller = new AbortController();
    const h = harness((_n, c) => {
      if (c.includes('rm -f')) controller.abort();
      return ok();
    });
    const r = await executePlan(plan('disable-chaos', ['pi-a']), { ...h.deps, signal: controller.signal });
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]?.options.signal).toBe(controller.signal);
    expect(r.notRun).toHaveLength(3);
    expect(r.ok).toBe(false);
  });

  it('reports progress', async () => {
    const events: string[] = [];
    const h = harness();
    await executePlan(plan('restart-nginx', ['pi-a']), {
      ...h.deps,
      onProgress: (e) => events.push(e.kind),
    });
    expect(events).toEqual(['step-started', 'step-finished', 'verifying']);
  });
});

describe('capText', () => {
  it('leaves short text alone', () => {
    expect(capText('abc', 10)).toEqual({ text: 'abc', cut: false });
  });
  it('never splits a surrogate pair', () => {
    const text = '😀'.repeat(3000);
    const { text: out, cut } = capText(text, 2000);
    expect(cut).toBe(true);
    expect(out.length).toBeLessThanOrEqual(2000);
    expect(out).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
  });
});
