import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { statusReportSchema } from '../../src/domain/report.js';
import { type LoopbackConfig, loopbackConfig } from '../support/bot-harness.js';

/**
 * `okome status` as an operator runs it, from a host that reaches nothing of the cache layer:
 * every address of the configuration is a closed loopback port.
 */

let cfg: LoopbackConfig | undefined;
let orchestrator: Server | undefined;
afterEach(async () => {
  cfg?.cleanup();
  await new Promise<void>((resolve) => (orchestrator ? orchestrator.close(() => resolve()) : resolve()));
  cfg = orchestrator = undefined;
});

function okome(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OKOME_')));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/okome.ts', ...args], {
    env: { ...clean, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('okome status when the bot reaches nothing', () => {
  it('exits 3 with the isolation line: no incident, no Pi declared dead', async () => {
    cfg = await loopbackConfig();
    const run = await okome(['status', '--config', cfg.path]);
    expect(run.stderr).toBe('');
    expect(run.stdout.split('\n')[0]).toBe(
      "Cannot reach the cache layer from here: check the bot's network and config.",
    );
    expect(run.stdout).not.toMatch(/INCIDENT|Reflash/);
    expect(run.stdout).toMatch(/no answer from the orchestrator, the VIP 127\.0\.0\.18 or any Pi/);
    expect(run.code).toBe(3);
  });

  it('--json: the isolation verdict, no incident, schema version 1, exit 3', async () => {
    cfg = await loopbackConfig();
    const run = await okome(['status', '--json', '--config', cfg.path]);
    const report = statusReportSchema.parse(JSON.parse(run.stdout));
    expect(report.schemaVersion).toBe(1);
    expect(report.isolation?.summary).toBe(
      "cannot reach the cache layer from here: check the bot's network and config",
    );
    expect(report.incidents).toEqual([]);
    expect(report.diagnosable).toBe(false);
    expect(run.code).toBe(3);
  });

  it('the orchestrator answering but neither Pi: "Both Pis unreachable", an incident (exit 1)', async () => {
    orchestrator = createServer((_req, res) => res.writeHead(200).end('ok'));
    const server = orchestrator;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.25', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    cfg = await loopbackConfig((doc) => {
      doc.orchestrator = { baseUrl: `http://127.0.0.25:${port}` };
    });
    const run = await okome(['status', '--config', cfg.path]);
    expect(run.stdout).not.toMatch(/Cannot reach the cache layer/);
    expect(run.stdout).toMatch(/^INCIDENT 4 — Both Pis unreachable \(pi-a, pi-b\)$/m);
    expect(run.stdout.match(/^INCIDENT /gm)).toHaveLength(1);
    expect(run.stdout).toMatch(/No cache action possible/);
    expect(run.code).toBe(1);
  });
});
