import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { LabAvailability } from './availability.js';
import type { Lab } from './lab.js';
import { sleep, waitFor } from './process-runner.js';
import { isAlive } from './teardown.js';
import {
  HOST_LINK,
  LAB_ADDRESSES,
  LAB_ALERTMANAGER_TOKEN,
  type LabNode,
  type PiNode,
  PORTS,
  REPO_CONTRIB,
} from './topology.js';

/**
 * The monitoring loop on the lab, opt-in (`startMonitoring(lab)`): Debian's exporters on the
 * Pis, blackbox exporter, Prometheus and Alertmanager in okl-bot, with the SHIPPED rules
 * (contrib/prometheus/okome.rules.yml), scrape jobs (prometheus.example.yml), blackbox modules
 * and receiver (contrib/alertmanager/okome-receiver.yml). Only timings are overridden, at start,
 * into the lab work dir: see LAB_MONITORING_TIMINGS and docs/lab.md. Every process lives in a
 * lab namespace (the lab's teardown kills it) under `timeout`, so none outlives MAX_LIFETIME_SEC.
 */

/** Debian's binaries (prometheus, prometheus-alertmanager and the four exporters). */
export const MONITORING_BINARIES = [
  '/usr/bin/prometheus',
  '/usr/bin/prometheus-alertmanager',
  '/usr/bin/prometheus-node-exporter',
  '/usr/bin/prometheus-redis-exporter',
  '/usr/bin/prometheus-nginx-exporter',
  '/usr/bin/prometheus-blackbox-exporter',
] as const;

/** Why the monitoring lab cannot run here (a Debian package missing), in words to act on. */
export function monitoringAvailability(): LabAvailability {
  const missing = MONITORING_BINARIES.filter((bin) => {
    try {
      accessSync(bin, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return { ok: true };
  return {
    ok: false,
    reason: `missing ${missing.join(', ')}. To resolve: apt-get install prometheus prometheus-alertmanager prometheus-node-exporter prometheus-redis-exporter prometheus-nginx-exporter prometheus-blackbox-exporter`,
  };
}

/** The lab's overrides of the shipped timings (production values in the shipped files). */
export interface MonitoringTimings {
  /** scrape_interval, evaluation_interval, scrape_timeout and Prometheus's alert resend delay. */
  readonly intervalSec: number;
  /** Every rule's `for:` that is not 0s (shipped: 30s to 15m). */
  readonly forSec: number;
  /** Alertmanager's default route (shipped: 30s / 5m / 4h). */
  readonly groupWaitSec: number;
  readonly groupIntervalSec: number;
  readonly repeatIntervalSec: number;
  /** The Watchdog route (shipped: 0s / 1m / 1m). */
  readonly watchdogGroupIntervalSec: number;
  readonly watchdogRepeatSec: number;
}

export const LAB_MONITORING_TIMINGS: MonitoringTimings = Object.freeze({
  intervalSec: 1,
  forSec: 2,
  groupWaitSec: 0,
  groupIntervalSec: 1,
  repeatIntervalSec: 3600,
  watchdogGroupIntervalSec: 1,
  watchdogRepeatSec: 1,
});

/** Where the loop's servers listen: Prometheus and Alertmanager on okl-bot's end of the host link. */
export const MONITORING_PORTS = Object.freeze({
  prometheus: 9090,
  alertmanager: 9093,
  blackbox: 9115,
  node: 9100,
  nginx: 9113,
  redis: 9121,
  stubStatus: 8080,
} as const);

/** No process of the loop lives longer, even if nothing tears the lab down. */
export const MAX_LIFETIME_SEC = 3600;

const NODE_ENV_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const LAB_PREFIX = '10.86.0.';

type Yaml = Record<string, unknown>;
const asRecord = (v: unknown): Yaml => (typeof v === 'object' && v !== null ? (v as Yaml) : {});
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** The shipped rules with every non-zero `for:` replaced; expressions, labels and texts unchanged. */
export function labRules(shipped: string, t: MonitoringTimings): string {
  const doc = asRecord(parse(shipped));
  for (const group of asArray(doc.groups)) {
    const g = asRecord(group);
    delete g.interval;
    for (const rule of asArray(g.rules)) {
      const r = asRecord(rule);
      if (r.for !== undefined && r.for !== '0s') r.for = `${t.forSec}s`;
    }
  }
  return stringify(doc);
}

/** A lab address or loopback: anything else in a generated config is a bug (network safety). */
function assertLabTarget(target: string): string {
  const host = target.replace(/^https?:\/\//, '').split(/[:/]/)[0] ?? '';
  if (!host.startsWith(LAB_PREFIX) && !host.startsWith('127.') && host !== HOST_LINK.botAddress)
    throw new Error(`monitoring lab: ${target} is neither a lab address nor loopback`);
  return target;
}

/**
 * prometheus.example.yml on the lab: its jobs, relabelling and node labels as shipped, the
 * production subnet rewritten to the lab's (same last octets), intervals overridden. The
 * okome-bot job is left out (its token and address are deployment-specific).
 */
export function labScrapeConfig(example: string, rulesPath: string, t: MonitoringTimings): string {
  const doc = asRecord(parse(example));
  doc.global = {
    scrape_interval: `${t.intervalSec}s`,
    evaluation_interval: `${t.intervalSec}s`,
    scrape_timeout: `${t.intervalSec}s`,
  };
  doc.rule_files = [rulesPath];
  doc.alerting = {
    alertmanagers: [
      { static_configs: [{ targets: [`${HOST_LINK.botAddress}:${MONITORING_PORTS.alertmanager}`] }] },
    ],
  };
  const labAddress = (s: string) =>
    assertLabTarget(s.replaceAll('192.168.86.', LAB_PREFIX).replace(/^localhost:/, '127.0.0.1:'));
  doc.scrape_configs = asArray(doc.scrape_configs)
    .map(asRecord)
    .filter((job) => job.job_name !== 'okome-bot')
    .map((job) => {
      const copy: Yaml = structuredClone(job);
      copy.static_configs = asArray(copy.static_configs).map((sc) => {
        const s = asRecord(sc);
        return { ...s, targets: asArray(s.targets).map((x) => labAddress(String(x))) };
      });
      if (copy.relabel_configs !== undefined) {
        copy.relabel_configs = asArray(copy.relabel_configs).map((rc) => {
          const r = asRecord(rc);
          return typeof r.replacement === 'string' && r.target_label === '__address__'
            ? { ...r, replacement: labAddress(r.replacement) }
            : r;
        });
      }
      return copy;
    });
  return stringify(doc, { aliasDuplicateObjects: false });
}

/**
 * okome-receiver.yml on the lab: routes, grouping, inhibit rules and receiver as shipped; the
 * webhook URL is the bot in okl-bot, the token file the lab's, the timings overridden.
 */
export function labReceiverConfig(
  shipped: string,
  botUrl: string,
  tokenFile: string,
  t: MonitoringTimings,
): string {
  const doc = asRecord(parse(shipped));
  const route = asRecord(doc.route);
  route.group_wait = `${t.groupWaitSec}s`;
  route.group_interval = `${t.groupIntervalSec}s`;
  route.repeat_interval = `${t.repeatIntervalSec}s`;
  for (const child of asArray(route.routes)) {
    const r = asRecord(child);
    const watchdog = asArray(r.matchers).some((m) => /alertname\s*=\s*"?Watchdog"?/.test(String(m)));
    if (!watchdog)
      throw new Error(`monitoring lab: no lab timings for the route ${JSON.stringify(r.matchers)}`);
    r.group_wait = '0s';
    r.group_interval = `${t.watchdogGroupIntervalSec}s`;
    r.repeat_interval = `${t.watchdogRepeatSec}s`;
  }
  for (const receiver of asArray(doc.receivers)) {
    for (const hook of asArray(asRecord(receiver).webhook_configs)) {
      const h = asRecord(hook);
      h.url = assertLabTarget(botUrl);
      asRecord(asRecord(h.http_config).authorization).credentials_file = tokenFile;
    }
  }
  return stringify(doc);
}

export type MonitoringProcess =
  | 'prometheus'
  | 'alertmanager'
  | 'blackbox'
  | `node-exporter:${PiNode}`
  | `nginx-exporter:${PiNode}`
  | `textfile:${PiNode}`
  | 'redis-exporter:pi-b';

interface Daemon {
  readonly node: LabNode;
  readonly argv: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  pid: number | undefined;
}

export interface PromAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly state: 'pending' | 'firing';
}

/** The loop's processes, their URLs, and stop/start for the tests that break the path. */
export class LabMonitoring {
  readonly prometheusUrl = `http://${HOST_LINK.botAddress}:${MONITORING_PORTS.prometheus}`;
  readonly alertmanagerUrl = `http://${HOST_LINK.botAddress}:${MONITORING_PORTS.alertmanager}`;

  constructor(
    private readonly lab: Lab,
    readonly dir: string,
    readonly timings: MonitoringTimings,
    private readonly daemons: Map<MonitoringProcess, Daemon>,
  ) {}

  /** Starts one process (again) and waits for it to be ready (the two servers: /-/ready). */
  async start(name: MonitoringProcess): Promise<void> {
    const d = this.daemon(name);
    if (d.pid !== undefined && (await isAlive(d.pid))) return;
    const log = await open(join(this.dir, `${name.replace(':', '-')}.log`), 'a');
    const argv = this.lab.commandFor(d.node, [
      'timeout',
      '--kill-after=5',
      String(MAX_LIFETIME_SEC),
      ...d.argv,
    ]);
    const child = spawn(argv[0] ?? 'false', argv.slice(1), {
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
      env: { PATH: NODE_ENV_PATH, LANG: 'C.UTF-8', TZ: 'UTC', ...d.env },
    });
    child.unref();
    await log.close();
    d.pid = child.pid;
    const url =
      name === 'prometheus' ? this.prometheusUrl : name === 'alertmanager' ? this.alertmanagerUrl : undefined;
    if (url !== undefined) {
      await waitFor(
        `${name} ready`,
        async () => {
          if (d.pid === undefined || !(await isAlive(d.pid)))
            throw new Error(`${name} exited: ${await this.logTail(name)}`);
          const r = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).catch(
            () => undefined,
          );
          await r?.body?.cancel();
          return r?.ok === true ? true : undefined;
        },
        15_000,
        50,
      );
    }
  }

  /** SIGTERM (a clean stop: Alertmanager writes its notification log and silences), then waits. */
  async stop(name: MonitoringProcess): Promise<void> {
    const d = this.daemon(name);
    const pid = d.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
    // timeout(1) SIGKILLs its child 5 s after passing on the SIGTERM.
    await waitFor(`${name} to stop`, async () => ((await isAlive(pid)) ? undefined : true), 10_000, 25);
    d.pid = undefined;
  }

  async restart(name: MonitoringProcess): Promise<void> {
    await this.stop(name);
    await this.start(name);
  }

  async logTail(name: MonitoringProcess): Promise<string> {
    const text = await readFile(join(this.dir, `${name.replace(':', '-')}.log`), 'utf8').catch(() => '');
    return text.slice(-2000);
  }

  /** Prometheus's alerts (pending and firing). */
  async prometheusAlerts(): Promise<PromAlert[]> {
    const r = await fetch(`${this.prometheusUrl}/api/v1/alerts`, { signal: AbortSignal.timeout(2000) });
    const body = (await r.json()) as { data: { alerts: PromAlert[] } };
    return body.data.alerts;
  }

  /** Alertmanager's active alerts (API v2). */
  async alertmanagerAlerts(): Promise<Array<{ labels: Record<string, string>; status: { state: string } }>> {
    const r = await fetch(`${this.alertmanagerUrl}/api/v2/alerts`, { signal: AbortSignal.timeout(2000) });
    return (await r.json()) as never;
  }

  /** Every scrape target, with its health as Prometheus last saw it. */
  async targets(): Promise<Array<{ job: string; instance: string; health: string; lastError: string }>> {
    const r = await fetch(`${this.prometheusUrl}/api/v1/targets?state=active`, {
      signal: AbortSignal.timeout(2000),
    });
    const body = (await r.json()) as {
      data: { activeTargets: Array<{ labels: Record<string, string>; health: string; lastError: string }> };
    };
    return body.data.activeTargets.map((t) => ({
      job: t.labels.job ?? '',
      instance: t.labels.instance ?? '',
      health: t.health,
      lastError: t.lastError,
    }));
  }

  /** Stops every process of the loop (the lab's teardown kills them anyway). */
  async down(): Promise<void> {
    for (const name of this.daemons.keys()) await this.stop(name).catch(() => undefined);
  }

  private daemon(name: MonitoringProcess): Daemon {
    const d = this.daemons.get(name);
    if (d === undefined) throw new Error(`no monitoring process ${name}`);
    return d;
  }
}

async function installStubStatus(lab: Lab, node: PiNode): Promise<void> {
  // The shipped snippet, where its header says to put it; the lab nginx.conf includes
  // conf.d/okome-*.conf, so nodes without it run no stub_status server.
  await lab.execOk(node, [
    'install',
    '-D',
    '-m',
    '0644',
    join(REPO_CONTRIB, 'nginx', 'okome-stub-status.conf'),
    '/etc/nginx/conf.d/okome-stub-status.conf',
  ]);
  await lab.execOk(node, ['systemctl', 'reload', 'nginx']);
  await waitFor(
    `stub_status on ${node}`,
    async () =>
      (
        await lab.exec(node, [
          'curl',
          '-fsS',
          '--max-time',
          '1',
          '-o',
          '/dev/null',
          `http://127.0.0.1:${MONITORING_PORTS.stubStatus}/stub_status`,
        ])
      ).code === 0
        ? true
        : undefined,
    5000,
    50,
  );
}

export interface MonitoringOptions {
  readonly timings?: Partial<MonitoringTimings>;
  /** Where Alertmanager posts (default: the bot's webhook in okl-bot, over loopback). */
  readonly botWebhookUrl?: string;
}

/**
 * Starts the loop on a running lab and resolves once Prometheus scrapes every target
 * successfully and Alertmanager is ready. The bot is not needed yet: Alertmanager retries.
 */
export async function startMonitoring(lab: Lab, options: MonitoringOptions = {}): Promise<LabMonitoring> {
  const availability = monitoringAvailability();
  if (!availability.ok) throw new Error(`the monitoring lab cannot run here: ${availability.reason}`);
  const t: MonitoringTimings = { ...LAB_MONITORING_TIMINGS, ...options.timings };
  const dir = join(lab.workDir, 'monitoring');
  await mkdir(dir, { recursive: true });
  const rulesPath = join(dir, 'okome.rules.lab.yml');
  const tokenPath = join(dir, 'okome-alertmanager.token');
  const promConfig = join(dir, 'prometheus.yml');
  const amConfig = join(dir, 'alertmanager.yml');
  const shipped = (p: string) => readFileSync(join(REPO_CONTRIB, p), 'utf8');
  await writeFile(rulesPath, labRules(shipped('prometheus/okome.rules.yml'), t));
  await writeFile(promConfig, labScrapeConfig(shipped('prometheus/prometheus.example.yml'), rulesPath, t));
  await writeFile(tokenPath, LAB_ALERTMANAGER_TOKEN, { mode: 0o600 });
  await writeFile(
    amConfig,
    labReceiverConfig(
      shipped('alertmanager/okome-receiver.yml'),
      options.botWebhookUrl ?? `http://127.0.0.1:${PORTS.botHttp}/alerts/alertmanager`,
      tokenPath,
      t,
    ),
  );

  const daemons = new Map<MonitoringProcess, Daemon>();
  for (const node of ['pi-a', 'pi-b'] as const) {
    const address = LAB_ADDRESSES[node];
    daemons.set(`textfile:${node}`, {
      node,
      pid: undefined,
      // okome-node-metrics.timer's job, every intervalSec instead of 15 s.
      argv: [
        'sh',
        '-c',
        `mkdir -p /var/lib/prometheus/node-exporter && while :; do sh "$0" || true; sleep ${t.intervalSec}; done`,
        join(REPO_CONTRIB, 'textfile', 'okome-node-metrics'),
      ],
      env: { OKOME_VIP: LAB_ADDRESSES.vip },
    });
    daemons.set(`node-exporter:${node}`, {
      node,
      pid: undefined,
      // Textfile, memory and filesystem only: no rule uses the others (never the systemd one).
      argv: [
        'prometheus-node-exporter',
        `--web.listen-address=${address}:${MONITORING_PORTS.node}`,
        '--collector.disable-defaults',
        '--collector.textfile',
        '--collector.textfile.directory=/var/lib/prometheus/node-exporter',
        '--collector.meminfo',
        '--collector.filesystem',
      ],
    });
    daemons.set(`nginx-exporter:${node}`, {
      node,
      pid: undefined,
      argv: [
        'prometheus-nginx-exporter',
        `-nginx.scrape-uri=http://127.0.0.1:${MONITORING_PORTS.stubStatus}/stub_status`,
        `-web.listen-address=${address}:${MONITORING_PORTS.nginx}`,
      ],
    });
  }
  daemons.set('redis-exporter:pi-b', {
    node: 'pi-b',
    pid: undefined,
    argv: [
      'prometheus-redis-exporter',
      `-redis.addr=redis://127.0.0.1:${PORTS.redis}`,
      `-web.listen-address=${LAB_ADDRESSES['pi-b']}:${MONITORING_PORTS.redis}`,
      '-check-keys=db0=okome:budget:rl:*',
    ],
  });
  daemons.set('blackbox', {
    node: 'bot',
    pid: undefined,
    argv: [
      'prometheus-blackbox-exporter',
      `--config.file=${join(REPO_CONTRIB, 'prometheus', 'blackbox.yml')}`,
      `--web.listen-address=127.0.0.1:${MONITORING_PORTS.blackbox}`,
      // Probes get the scrape timeout (1 s) minus this, instead of minus 0.5 s.
      '--timeout-offset=0.1',
      '--log.level=warn',
    ],
  });
  daemons.set('alertmanager', {
    node: 'bot',
    pid: undefined,
    argv: [
      'prometheus-alertmanager',
      `--config.file=${amConfig}`,
      `--storage.path=${join(dir, 'alertmanager-data')}`,
      `--web.listen-address=${HOST_LINK.botAddress}:${MONITORING_PORTS.alertmanager}`,
      // No cluster: a peer-less Alertmanager waits for no gossip before notifying.
      '--cluster.listen-address=',
      '--data.retention=1h',
      '--log.level=info',
    ],
  });
  daemons.set('prometheus', {
    node: 'bot',
    pid: undefined,
    argv: [
      'prometheus',
      `--config.file=${promConfig}`,
      `--storage.tsdb.path=${join(dir, 'prometheus-data')}`,
      '--storage.tsdb.retention.time=1h',
      `--web.listen-address=${HOST_LINK.botAddress}:${MONITORING_PORTS.prometheus}`,
      `--rules.alert.resend-delay=${t.intervalSec}s`,
      '--log.level=warn',
    ],
  });
  const monitoring = new LabMonitoring(lab, dir, t, daemons);
  await Promise.all([installStubStatus(lab, 'pi-a'), installStubStatus(lab, 'pi-b')]);
  // Exporters need no wait (Prometheus's first scrapes tell); the two servers start side by side.
  await Promise.all([...daemons.keys()].map((name) => monitoring.start(name)));
  await waitFor(
    'every scrape target up',
    async () => {
      const targets = await monitoring.targets().catch(() => []);
      return targets.length > 0 && targets.every((x) => x.health === 'up') ? true : undefined;
    },
    20_000,
    100,
  ).catch(async (error) => {
    const down = (await monitoring.targets().catch(() => [])).filter((x) => x.health !== 'up');
    throw new Error(`${error instanceof Error ? error.message : String(error)}: ${JSON.stringify(down)}`);
  });
  return monitoring;
}

export { sleep };
