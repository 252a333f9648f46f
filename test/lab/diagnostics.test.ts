import { afterAll, beforeAll, expect, it } from 'vitest';
import { type StatusReportJson, statusReportSchema } from '../../src/domain/report.js';
import { applyFault, type FaultHandle } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { describeLab } from '../support/lab/vitest-lab.js';
import { runBotCli } from '../support/run-bot-cli.js';

/**
 * `okome status` in the bot's namespace against the lab: each runbook incident produced by a
 * real fault, named with its evidence and proposed actions.
 */

let lab: Lab;
const faults: FaultHandle[] = [];

async function status(
  ...extra: string[]
): Promise<{ code: number | null; report: StatusReportJson; ms: number }> {
  const r = await runBotCli(lab, ['status', '--json', '--config', lab.configPath, ...extra]);
  let json: unknown;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    throw new Error(
      `okome status printed no JSON (exit ${r.code}): ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 2000)}`,
    );
  }
  return { code: r.code, report: statusReportSchema.parse(json), ms: r.ms };
}

const keys = (r: StatusReportJson) => r.incidents.map((i) => i.key);
const actions = (r: StatusReportJson, key: string) =>
  r.incidents.find((i) => i.key === key)?.actions.map((a) => `${a.actionId}@${a.nodes.join(',')}`);

async function fault(...args: Parameters<typeof applyFault>): Promise<void> {
  faults.push(await applyFault(...args));
}

describeLab('diagnostics on the lab', () => {
  beforeAll(async () => {
    lab = await startLab();
  });
  afterAll(async () => {
    await lab?.down();
  });
  // Each test reverts its faults so the next starts from a healthy lab.
  async function revertAll(): Promise<void> {
    while (faults.length > 0) await faults.pop()?.revert();
  }

  it('healthy lab: exit 0, every check ok, no incident, VIP on pi-a', async () => {
    const { code, report } = await status();
    expect(report.incidents).toEqual([]);
    expect(report.checks.filter((c) => c.status !== 'ok').map((c) => `${c.id}: ${c.summary}`)).toEqual([]);
    expect(report.vip.state).toEqual({ kind: 'single', holder: 'pi-a' });
    expect(code).toBe(0);
  });

  it('incident 1: nginx stopped on pi-a', async () => {
    await fault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' });
    const { code, report } = await status();
    expect(keys(report)).toContain('1:pi-a');
    expect(actions(report, '1:pi-a')).toEqual(['restart-nginx@pi-a']);
    expect(report.checks.find((c) => c.id === 'service:nginx@pi-a')?.status).toBe('fail');
    expect(code).toBe(1);
    await revertAll();
  });

  it('incident 2: redis-server stopped', async () => {
    await fault(lab, 'service-stop', { node: 'pi-b', service: 'redis-server' });
    const { report } = await status();
    expect(keys(report)).toEqual(['2:pi-b']);
    expect(actions(report, '2:pi-b')).toEqual(['restart-redis@pi-b']);
    await revertAll();
  });

  it('incident 3: keepalived stopped on both, no holder', async () => {
    await fault(lab, 'service-stop', { node: 'pi-a', service: 'keepalived' });
    await fault(lab, 'service-stop', { node: 'pi-b', service: 'keepalived' });
    await lab.waitForVip([]);
    const { report } = await status();
    expect(report.vip.state).toEqual({ kind: 'none' });
    expect(keys(report)).toContain('3:pi-a,pi-b');
    expect(actions(report, '3:pi-a,pi-b')).toEqual(['restart-keepalived@pi-a,pi-b']);
    await revertAll();
    await lab.waitForVip(['pi-a']);
  });

  it('incident 4: pi-a link down, VIP on pi-b; the status ends within its deadline + 0.5 s', async () => {
    await fault(lab, 'link-down', { node: 'pi-a' });
    await lab.waitForVip(['pi-b']);
    const { report, ms } = await status();
    expect(keys(report)).toContain('4:pi-a');
    expect(actions(report, '4:pi-a')).toEqual([]);
    expect(report.incidents.find((i) => i.key === '4:pi-a')?.advice.join(' ')).toMatch(/Reflash pi-a/);
    expect(report.vip.state).toEqual({ kind: 'single', holder: 'pi-b' });
    expect(report.checks.find((c) => c.id === 'ssh@pi-a')?.status).toMatch(/unreachable|timeout/);
    // The CLI's own start-up is not part of the status run: compare the run itself.
    expect(report.durationMs).toBeLessThanOrEqual(8000 + 500);
    expect(ms).toBeGreaterThan(0);
    await revertAll();
    await lab.waitForVip(['pi-a']);
  });

  it('incident 5: orchestrator down, then 503: no cache action', async () => {
    await fault(lab, 'orchestrator-down', {});
    let { report } = await status();
    expect(keys(report)[0]).toBe('5');
    expect(report.incidents.flatMap((i) => i.actions)).toEqual([]);
    await revertAll();
    await fault(lab, 'orchestrator-503', {});
    ({ report } = await status());
    expect(keys(report)[0]).toBe('5');
    expect(report.incidents.flatMap((i) => i.actions)).toEqual([]);
    await revertAll();
  });

  it('incident 5b: streaming directives removed on pi-a', async () => {
    await fault(lab, 'streaming-directives-removed', { node: 'pi-a' });
    const { report } = await status();
    expect(keys(report)).toEqual(['5b:pi-a']);
    expect(report.incidents[0]?.summary).toMatch(/proxy_buffering off/);
    expect(actions(report, '5b:pi-a')).toEqual([]);
    await revertAll();
  });

  it('incident 6: hit ratio collapsed and runaway rate-limit counters', async () => {
    await fault(lab, 'budget-runaway', {});
    await fault(lab, 'redis-miss-storm', {});
    const { report } = await status();
    expect(keys(report)).toEqual(['6:pi-b']);
    expect(actions(report, '6:pi-b')).toEqual(['flush-redis@pi-b']);
    const budget = report.checks.find((c) => c.id === 'redis-budget');
    expect(budget?.summary).toMatch(/runaway: /);
    await revertAll();
  });

  it('incident 7: chaos flag and an iptables rule', async () => {
    await fault(lab, 'chaos', { node: 'pi-a' });
    const { report } = await status();
    expect(keys(report)).toContain('7:pi-a');
    expect(actions(report, '7:pi-a')).toEqual(['disable-chaos@pi-a']);
    expect(report.checks.find((c) => c.id === 'chaos-flag@pi-a')?.status).toBe('fail');
    expect(report.checks.find((c) => c.id === 'firewall@pi-a')?.status).toBe('fail');
    await revertAll();
  });

  it('incident 7: a chaos rule in the nat table alone is seen (iptables -S would not)', async () => {
    await fault(lab, 'chaos', { node: 'pi-a', tables: ['nat'] });
    const { report } = await status();
    expect(keys(report)).toContain('7:pi-a');
    const firewall = report.checks.find((c) => c.id === 'firewall@pi-a');
    expect(firewall?.status).toBe('fail');
    expect(firewall?.facts).toEqual({
      kind: 'firewall',
      unexpected: ['-t nat -A OUTPUT -p tcp -m tcp --dport 6380 -j REDIRECT --to-ports 9'],
    });
    await revertAll();
  });

  it('split brain: keepalived killed hard on pi-a leaves both holding the VIP', async () => {
    await fault(lab, 'keepalived-kill', { node: 'pi-a' });
    await lab.waitForVip(['pi-a', 'pi-b']);
    const { report } = await status();
    expect(report.vip.state).toEqual({ kind: 'split', holders: ['pi-a', 'pi-b'] });
    expect(report.incidents[0]?.title).toBe('VIP split brain');
    await revertAll();
    await lab.waitForVip(['pi-a']);
  });

  it('two faults: orchestrator down and nginx stopped: incident 5 leads, no cache action', async () => {
    await fault(lab, 'orchestrator-down', {});
    await fault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' });
    const { report } = await status();
    expect(keys(report)[0]).toBe('5');
    expect(keys(report)).toContain('1:pi-a');
    expect(report.incidents.flatMap((i) => i.actions)).toEqual([]);
    expect(report.incidents.find((i) => i.key === '1:pi-a')?.held?.reason).toMatch(/Golden rule 1/);
    await revertAll();
  });

  it('a changed host key: the checks on that node fail as a mismatch and no command ran', async () => {
    const log = async () =>
      (await lab.exec('pi-a', 'cat /var/log/okome-lab/sshd.log 2>/dev/null || true')).stdout;
    await fault(lab, 'host-key-change', { node: 'pi-a' });
    const before = (await log()).match(/Accepted publickey/g)?.length ?? 0;
    const { report } = await status();
    const pia = report.checks.filter((c) => c.node === 'pi-a' && c.id !== 'node-http@pi-a');
    expect(pia.length).toBeGreaterThan(5);
    for (const c of pia) expect(c.errorCode, c.id).toBe('OKOME_SSH_HOST_KEY_MISMATCH');
    expect(report.checks.find((c) => c.id === 'ssh@pi-a')?.summary).toMatch(/host key mismatch/);
    const after = (await log()).match(/Accepted publickey/g)?.length ?? 0;
    expect(after).toBe(before);
    await revertAll();
  });
});
