import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  alertsConfigSchema,
  DEFAULT_ALERT_MAPPING,
  incidentForAlert,
} from '../../src/alerts/alert-config.js';
import { freePort } from '../support/launchers/free-port.js';
import {
  type Daemon,
  logTail,
  spawnDaemon,
  stopProcessTree,
  waitUntilReady,
} from '../support/launchers/process-utils.js';
import { describeWithTools } from '../support/required-tools.js';

/**
 * The shipped monitoring files (contrib/): Prometheus rules checked and unit-tested by promtool,
 * the Alertmanager receiver checked by amtool and its inhibit rules applied by a real
 * Alertmanager, every alert mapped by the bot to the incident its `incident` label names.
 */

const execFileAsync = promisify(execFile);
const CONTRIB = join(import.meta.dirname, '../../contrib');
const RULES = join(CONTRIB, 'prometheus/okome.rules.yml');
const RULES_TEST = join(CONTRIB, 'prometheus/okome.rules.test.yml');
const RECEIVER = join(CONTRIB, 'alertmanager/okome-receiver.yml');
const EXAMPLE_CONFIG = join(import.meta.dirname, '../../config/okome.example.yml');
// The shortest dead-man timeout the bot's configuration should use (README, okome-receiver.yml).
const BOT_WATCHDOG_TIMEOUT_MS = 5 * 60_000;

interface Rule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
interface RuleTest {
  readonly eval_time: string;
  readonly alertname: string;
  readonly exp_alerts: readonly { exp_labels?: Record<string, string> }[];
}

const rules: Rule[] = (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (g) => g.rules,
);

function durationMs(text: string): number {
  const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)([smhd])/g)) total += Number(n) * (units[unit ?? 's'] ?? 0);
  return total;
}

async function tool(command: string, args: readonly string[], cwd?: string) {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, { cwd, encoding: 'utf8', timeout: 60_000 });
    return { code: 0, out: `${stdout}${stderr}` };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

it('every shipped alert opens the incident its label names, on the node its label names', () => {
  const example = parse(readFileSync(EXAMPLE_CONFIG, 'utf8')) as { alerts?: unknown };
  const exampleMapping = alertsConfigSchema.parse(example.alerts ?? {}).mapping;
  const nodes = [
    { name: 'pi-a', address: '10.86.0.20' },
    { name: 'pi-b', address: '10.86.0.19' },
  ];
  for (const rule of rules) {
    const labels = { alertname: rule.alert, ...rule.labels, node: 'pi-b', instance: '10.86.0.19:9100' };
    const incident = rule.labels?.incident;
    for (const mapping of [DEFAULT_ALERT_MAPPING, exampleMapping]) {
      const mapped = incidentForAlert(labels, mapping, nodes);
      expect({ alert: rule.alert, incident: mapped?.incident }).toEqual({ alert: rule.alert, incident });
      if (incident !== undefined) expect(mapped?.node).toBe('pi-b');
    }
    // Runbook-worded: an incident's alert says which incident, in the runbook's title.
    if (incident !== undefined)
      expect(rule.annotations?.summary).toMatch(new RegExp(`^Incident ${incident} — `));
    else expect(rule.annotations?.summary, rule.alert).toBeTruthy();
  }
  expect(new Set(rules.filter((r) => r.labels?.incident).map((r) => r.labels?.incident))).toEqual(
    new Set(['1', '2', '3', '4', '5', '5b', '6', '7']),
  );
});

it('the receiver mutes the cache layer while the orchestrator is down and repeats Watchdog in time', () => {
  const receiver = parse(readFileSync(RECEIVER, 'utf8')) as {
    route: {
      routes: { matchers: string[]; group_interval: string; repeat_interval: string; group_wait: string }[];
    };
    inhibit_rules: { source_matchers: string[]; target_matchers: string[] }[];
  };
  const watchdog = receiver.route.routes.find((r) => r.matchers.includes('alertname="Watchdog"'));
  expect(watchdog).toBeDefined();
  // The longest gap between two Watchdog deliveries, with one evaluation and one retry of slack.
  const gap = durationMs(watchdog?.repeat_interval ?? '') + durationMs(watchdog?.group_interval ?? '');
  expect(gap).toBeLessThanOrEqual(BOT_WATCHDOG_TIMEOUT_MS / 2);
  expect(receiver.inhibit_rules).toContainEqual({
    source_matchers: ['alertname="OrchestratorDown"'],
    target_matchers: ['layer="cache"'],
  });
  // The orchestrator's own alerts are never muted by it; every node-side incident is.
  for (const rule of rules) {
    const incident = rule.labels?.incident;
    if (incident === '5' || incident === '5b') expect(rule.labels?.layer, rule.alert).toBe('orchestrator');
    if (['1', '2', '4', '6', '7'].includes(incident ?? ''))
      expect(rule.labels?.layer, rule.alert).toBe('cache');
  }
  expect(rules.find((r) => r.alert === 'Watchdog')?.expr).toBe('vector(1)');
});

describeWithTools('promtool on the shipped rules', ['promtool'], 'apt-get install prometheus', () => {
  it('promtool check rules accepts every rule', async () => {
    const result = await tool('promtool', ['check', 'rules', RULES]);
    expect(result.out).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(result.code).toBe(0);
  });

  it('promtool test rules: every alert is pending, fires with its shipped for:, then resolves', async () => {
    const tests = (parse(readFileSync(RULES_TEST, 'utf8')) as { tests: { alert_rule_test: RuleTest[] }[] })
      .tests;
    const checks = tests.flatMap((t) => t.alert_rule_test);
    for (const rule of rules) {
      const mine = checks.filter((c) => c.alertname === rule.alert);
      const firing = mine.find((c) => c.exp_alerts.length > 0);
      expect(firing, `${rule.alert} never fires in okome.rules.test.yml`).toBeDefined();
      const at = durationMs(firing?.eval_time ?? '');
      if (rule.alert === 'Watchdog') continue; // always firing by design
      // Quiet before the for: has elapsed (pending) and again after the series recover.
      const forMs = durationMs(rule.for ?? '0s');
      expect(
        mine.some(
          (c) =>
            c.exp_alerts.length === 0 &&
            durationMs(c.eval_time) < at &&
            at - durationMs(c.eval_time) <= Math.max(forMs, 60_000),
        ),
        `${rule.alert}: no quiet evaluation within its for: (${rule.for}) before it fires`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0 && durationMs(c.eval_time) > at),
        `${rule.alert} never resolves`,
      ).toBe(true);
    }
    const result = await tool(
      'promtool',
      ['test', 'rules', 'okome.rules.test.yml'],
      join(CONTRIB, 'prometheus'),
    );
    expect(result.out).toContain('SUCCESS');
    expect(result.code).toBe(0);
  });

  it('the example scrape configuration is valid and the blackbox/job names match the rules', async () => {
    const file = join(CONTRIB, 'prometheus/prometheus.example.yml');
    const result = await tool('promtool', ['check', 'config', '--syntax-only', file]);
    expect(result.code, result.out).toBe(0);
    const jobs = new Set(
      (parse(readFileSync(file, 'utf8')) as { scrape_configs: { job_name: string }[] }).scrape_configs.map(
        (s) => s.job_name,
      ),
    );
    for (const rule of rules) {
      for (const [, job] of rule.expr.matchAll(/job="([^"]+)"/g)) expect(jobs, rule.alert).toContain(job);
    }
  });

  it('the textfile script writes metrics promtool accepts, from this machine', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'okome-textfile-'));
    try {
      const script = join(CONTRIB, 'textfile/okome-node-metrics');
      const env = { ...process.env, OKOME_TEXTFILE_DIR: dir, OKOME_CHAOS_FLAG: join(dir, 'CHAOS_ENABLE') };
      const runScript = (vip: string) => {
        const r = spawnSync(script, [], { env: { ...env, OKOME_VIP: vip }, encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        return readFileSync(join(dir, 'okome.prom'), 'utf8');
      };
      expect(runScript('127.0.0.1')).toMatch(/^okome_vip_held\{vip="127\.0\.0\.1"\} 1$/m);
      writeFileSync(join(dir, 'CHAOS_ENABLE'), '');
      const text = runScript('127.0.0.254');
      expect(text).toMatch(/^okome_vip_held\{vip="127\.0\.0\.254"\} 0$/m);
      expect(text).toMatch(/^okome_chaos_flag_present 1$/m);
      expect(text).toMatch(/^okome_iptables_unexpected_rules -?\d+$/m);
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(lint.status, `${lint.stdout}${lint.stderr}`).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeWithTools(
  'the shipped Alertmanager receiver',
  ['amtool', 'prometheus-alertmanager'],
  'apt-get install prometheus-alertmanager',
  () => {
    let dir = '';
    let daemon: Daemon | undefined;
    let base = '';

    beforeAll(async () => {
      const check = await tool('amtool', ['check-config', RECEIVER]);
      expect(check.out).toContain('2 inhibit rules');
      expect(check.code, check.out).toBe(0);
      dir = mkdtempSync(join(tmpdir(), 'okome-am-'));
      const token = join(dir, 'token');
      writeFileSync(token, 'a-test-token-of-sixteen-chars\n');
      // The shipped file, pointed at a closed loopback port: nothing leaves this machine.
      const config = readFileSync(RECEIVER, 'utf8')
        .replace('http://okome-bot.lan:3000/', 'http://127.0.0.1:9/')
        .replace('/etc/prometheus/okome-alertmanager.token', token);
      writeFileSync(join(dir, 'alertmanager.yml'), config);
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      const log = join(dir, 'alertmanager.log');
      daemon = spawnDaemon(
        'prometheus-alertmanager',
        [
          `--config.file=${join(dir, 'alertmanager.yml')}`,
          `--storage.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--cluster.listen-address=',
        ],
        log,
      );
      const started = daemon;
      await waitUntilReady(
        'alertmanager',
        started,
        log,
        async () => (await fetch(`${base}/-/ready`)).ok,
        20_000,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${logTail(log)}`);
      });
    });

    afterAll(async () => {
      if (daemon !== undefined) await stopProcessTree(daemon.pid);
      if (dir !== '') rmSync(dir, { recursive: true, force: true });
    });

    const alert = (alertname: string, extra: Record<string, string> = {}) => {
      const rule = rules.find((r) => r.alert === alertname);
      return { labels: { alertname, ...rule?.labels, ...extra }, annotations: rule?.annotations ?? {} };
    };

    interface Listed {
      fingerprint: string;
      labels: Record<string, string>;
      status: { inhibitedBy: string[] };
    }
    const post = async (alerts: unknown[]) => {
      const posted = await fetch(`${base}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(alerts),
      });
      expect(posted.status).toBe(200);
    };
    /** alertname/node → the alertnames muting it, as Alertmanager's API reports them. */
    const mutedBy = async () => {
      const listed = (await (await fetch(`${base}/api/v2/alerts`)).json()) as Listed[];
      const names = new Map(listed.map((a) => [a.fingerprint, a.labels.alertname]));
      return Object.fromEntries(
        listed.map((a) => [
          `${a.labels.alertname}/${a.labels.node ?? '-'}`,
          a.status.inhibitedBy.map((f) => names.get(f)),
        ]),
      );
    };

    it('orchestrator down mutes the cache nodes (golden rule 1); a dead Pi mutes its own services', async () => {
      const orchestrator = alert('OrchestratorDown', { instance: 'http://10.86.0.25:8000/health' });
      await post([
        orchestrator,
        alert('StreamingSlow', { instance: 'http://10.86.0.20/health' }),
        alert('NginxDown', { node: 'pi-a' }),
        alert('NodeDown', { node: 'pi-b' }),
        alert('RedisDown', { node: 'pi-b' }),
      ]);
      expect(await mutedBy()).toEqual({
        'OrchestratorDown/-': [],
        'StreamingSlow/-': [],
        'NginxDown/pi-a': ['OrchestratorDown'],
        'NodeDown/pi-b': ['OrchestratorDown'],
        'RedisDown/pi-b': ['OrchestratorDown'],
      });
      // The orchestrator is back: the cache alerts speak again, except the dead Pi's Redis.
      await post([{ ...orchestrator, endsAt: new Date(Date.now() - 1000).toISOString() }]);
      expect(await mutedBy()).toEqual({
        'StreamingSlow/-': [],
        'NginxDown/pi-a': [],
        'NodeDown/pi-b': [],
        'RedisDown/pi-b': ['NodeDown'],
      });
    });
  },
);
