import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type StatusReportJson, statusReportSchema } from '../../src/domain/report.js';
import { applyFault, type FaultHandle } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { describeLab } from '../support/lab/vitest-lab.js';
import { runBotCli } from '../support/run-bot-cli.js';

/**
 * Golden rule 1 from the bot's side: when the bot itself is cut from the cache layer, `okome
 * status` says so (exit 3) instead of declaring Pis dead; when only the Pis are gone and the
 * orchestrator answers, that is a real incident.
 */

let lab: Lab;
const faults: FaultHandle[] = [];

async function status(): Promise<{ code: number | null; report: StatusReportJson }> {
  const r = await runBotCli(lab, ['status', '--json', '--config', lab.configPath]);
  let json: unknown;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    throw new Error(`okome status printed no JSON (exit ${r.code}): ${r.stdout.slice(0, 500)} ${r.stderr}`);
  }
  return { code: r.code, report: statusReportSchema.parse(json) };
}

async function revertAll(): Promise<void> {
  while (faults.length > 0) await faults.pop()?.revert();
}

describeLab('isolation on the lab', () => {
  beforeAll(async () => {
    lab = await startLab();
  });
  afterAll(async () => {
    await revertAll();
    await lab?.down();
  });

  it('bot-isolated: the isolation verdict, no incident, exit 3; the link to Slack stays up', async () => {
    faults.push(await applyFault(lab, 'bot-isolated'));

    // Only the lab side is cut: the bot still reaches a server in the root namespace (Slack's side).
    const slackSide: Server = createServer((_req, res) => res.writeHead(204).end());
    await new Promise<void>((resolve) => slackSide.listen(0, lab.hostAddress, resolve));
    const address = slackSide.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const reach = await lab.curl([
        '-fsS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `http://${lab.hostAddress}:${port}/`,
      ]);
      expect(reach.stdout).toBe('204');
    } finally {
      await new Promise<void>((resolve) => slackSide.close(() => resolve()));
    }

    const { code, report } = await status();
    expect(report.isolation?.summary).toBe(
      "cannot reach the cache layer from here: check the bot's network and config",
    );
    expect(report.incidents).toEqual([]);
    expect(report.diagnosable).toBe(false);
    for (const id of report.isolation?.evidence ?? [])
      expect(report.checks.find((c) => c.id === id)?.status, id).toMatch(/^(unreachable|timeout)$/);
    expect(code).toBe(3);

    const text = await runBotCli(lab, ['status', '--config', lab.configPath]);
    expect(text.stdout.split('\n')[0]).toBe(
      "Cannot reach the cache layer from here: check the bot's network and config.",
    );
    expect(text.stdout).not.toMatch(/INCIDENT|Reflash/);
    expect(text.code).toBe(3);
  });

  it('bot-isolated reverted: healthy again, exit 0', async () => {
    await revertAll();
    const { code, report } = await status();
    expect(report.isolation).toBeUndefined();
    expect(report.incidents).toEqual([]);
    expect(report.vip.state).toEqual({ kind: 'single', holder: 'pi-a' });
    expect(code).toBe(0);
  });

  it('both Pis cut, the orchestrator answering: one incident "Both Pis unreachable", no action, exit 1', async () => {
    faults.push(await applyFault(lab, 'link-down', { node: 'pi-a' }));
    faults.push(await applyFault(lab, 'link-down', { node: 'pi-b' }));
    const { code, report } = await status();
    expect(report.isolation).toBeUndefined();
    expect(report.incidents.map((i) => i.key)).toEqual(['4:pi-a,pi-b']);
    expect(report.incidents[0]?.title).toBe('Both Pis unreachable');
    expect(report.incidents[0]?.actions).toEqual([]);
    expect(report.checks.find((c) => c.id === 'orch-health')?.status).toBe('ok');
    expect(code).toBe(1);
    await revertAll();
    await lab.waitForVip(['pi-a']);
  });
});
