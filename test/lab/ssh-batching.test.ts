import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type StatusReportJson, statusReportSchema } from '../../src/domain/report.js';
import { applyFault, type FaultHandle } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { waitFor } from '../support/lab/process-runner.js';
import { LAB_ADDRESSES } from '../support/lab/topology.js';
import { describeLab } from '../support/lab/vitest-lab.js';
import { runBotCli } from '../support/run-bot-cli.js';

/**
 * Batched read-only commands (diagnostics.batchSsh) against the lab: the same verdicts as one
 * exec per check, healthy and with a fault, in at most two SSH execs per node per status.
 */

let lab: Lab;
let unbatchedConfig: string;
const faults: FaultHandle[] = [];

interface Run {
  readonly statuses: Record<string, string>;
  readonly execsPerNode: Record<string, number>;
  readonly ms: number;
  readonly report: StatusReportJson;
}

async function status(configPath: string): Promise<Run> {
  const r = await runBotCli(lab, ['status', '--json', '--config', configPath], { OKOME_LOG_LEVEL: 'debug' });
  const report = statusReportSchema.parse(JSON.parse(r.stdout));
  const execsPerNode: Record<string, number> = {};
  for (const line of r.stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; node?: string };
    if (entry.msg === 'ssh exec' && entry.node !== undefined)
      execsPerNode[entry.node] = (execsPerNode[entry.node] ?? 0) + 1;
  }
  const statuses = Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
  return { statuses, execsPerNode, ms: r.ms, report };
}

describeLab('batched ssh on the lab', () => {
  beforeAll(async () => {
    lab = await startLab();
    const config = parse(readFileSync(lab.configPath, 'utf8')) as Record<string, unknown>;
    unbatchedConfig = join(dirname(lab.configPath), 'okome.unbatched.yml');
    writeFileSync(unbatchedConfig, stringify({ ...config, diagnostics: { batchSsh: false } }));
  });
  afterAll(async () => {
    while (faults.length > 0) await faults.pop()?.revert();
    await lab?.down();
  });

  it('healthy lab: the same check statuses batched and not, in ≤ 2 execs per node batched', async () => {
    const batched = await status(lab.configPath);
    const single = await status(unbatchedConfig);
    expect(batched.statuses).toEqual(single.statuses);
    expect(Object.values(batched.statuses).every((s) => s === 'ok')).toBe(true);
    expect(Object.keys(batched.execsPerNode).sort()).toEqual(['pi-a', 'pi-b']);
    for (const n of Object.values(batched.execsPerNode)) expect(n).toBeLessThanOrEqual(2);
    // One exec per check without batching: the count above is the batch's doing.
    for (const n of Object.values(single.execsPerNode)) expect(n).toBeGreaterThan(5);
    console.info(
      `execs per node batched ${JSON.stringify(batched.execsPerNode)} vs ${JSON.stringify(single.execsPerNode)}; ` +
        `cold CLI status ${Math.round(batched.ms)} ms vs ${Math.round(single.ms)} ms`,
    );
  });

  it('nginx stopped on pi-a: the same check statuses batched and not', async () => {
    faults.push(await applyFault(lab, 'service-stop', { node: 'pi-a', service: 'nginx' }));
    // keepalived tracks nginx: let the VIP settle on pi-b first, so both runs see one lab state.
    await lab.waitForVip(['pi-b']);
    await waitFor(
      'the VIP to answer from pi-b',
      async () =>
        (await lab.curl(['-fso', '/dev/null', '--max-time', '1', `http://${LAB_ADDRESSES.vip}/`])).code === 0
          ? true
          : undefined,
      5000,
      50,
    );
    const batched = await status(lab.configPath);
    const single = await status(unbatchedConfig);
    expect(batched.statuses['service:nginx@pi-a']).toBe('fail');
    expect(batched.statuses).toEqual(single.statuses);
    expect(batched.report.incidents.map((i) => i.key)).toEqual(single.report.incidents.map((i) => i.key));
    for (const n of Object.values(batched.execsPerNode)) expect(n).toBeLessThanOrEqual(2);
  });
});
