import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { type LoadedConfig, loadConfig } from '../../../src/config/load-config.js';
import type { ConfigInput } from '../../../src/config/schema.js';
import { LAB_ADDRESSES, PI_SPECS, type PiNode, PORTS, SSH_USER } from './topology.js';

export interface BotConfigParams {
  readonly privateKeyPath: string;
  readonly hostKeys: Readonly<Record<PiNode, string>>;
  readonly storePath: string;
  readonly incidentChannel?: string;
  readonly approvers?: readonly string[];
  /** Cooldown between two runs of an action on the same nodes (default 2 s in the lab). */
  readonly cooldownMs?: number;
}

export const LAB_INCIDENT_CHANNEL = 'C0INCIDENT';
export const LAB_APPROVERS = ['U0APPROVER1', 'U0APPROVER2'] as const;
/** A user group of approvers; the Slack emulator says who is in it. */
export const LAB_APPROVER_GROUP = 'S0OKOMEOPS';

/**
 * The bot's configuration for this lab, as the schema's input type so that a schema change
 * breaks the type check here rather than the lab at run time. Actions follow
 * config/okome.example.yml.
 */
export function buildBotConfig(params: BotConfigParams): ConfigInput {
  const channel = params.incidentChannel ?? LAB_INCIDENT_CHANNEL;
  const cooldownMs = params.cooldownMs ?? 2000;
  const node = (name: PiNode, roles: Array<'frontend' | 'backend' | 'spare'>) => ({
    name,
    roles,
    address: LAB_ADDRESSES[name],
    httpPort: PORTS.http,
    ssh: {
      port: PORTS.ssh,
      user: SSH_USER,
      privateKeyPath: params.privateKeyPath,
      hostKey: params.hostKeys[name],
    },
    services: [...PI_SPECS[name].botServices],
  });
  return {
    nodes: [node('pi-a', ['frontend']), node('pi-b', ['backend', 'spare'])],
    vip: { address: LAB_ADDRESSES.vip, httpPort: PORTS.http },
    orchestrator: {
      baseUrl: `http://${LAB_ADDRESSES.orch}:${PORTS.orchestrator}`,
      healthPath: '/health',
      apiProbePath: '/api/planner',
    },
    redis: { host: LAB_ADDRESSES['pi-b'], port: PORTS.redis, db: 0, rateLimit: { limit: 60, windowSec: 60 } },
    firewall: { allowedRules: [] },
    actions: [
      {
        id: 'restart-nginx',
        title: 'Restart nginx',
        targets: { roles: ['frontend'] },
        steps: [{ run: 'serviceRestart', service: 'nginx' }],
        risk: 'low',
        cooldownMs,
      },
      {
        id: 'restart-redis',
        title: 'Restart redis-server',
        targets: { roles: ['backend'] },
        steps: [{ run: 'serviceRestart', service: 'redis-server' }],
        risk: 'low',
        cooldownMs,
      },
      {
        id: 'restart-keepalived',
        title: 'Restart keepalived',
        targets: { nodes: ['pi-a', 'pi-b'] },
        steps: [{ run: 'serviceRestart', service: 'keepalived' }],
        sequential: true,
        risk: 'medium',
        cooldownMs,
      },
      {
        id: 'flush-redis',
        title: 'Flush Redis (FLUSHDB)',
        targets: { roles: ['backend'] },
        steps: [{ redis: 'flushdb' }],
        approvals: 2,
        risk: 'medium',
        cooldownMs,
      },
      {
        id: 'disable-chaos',
        title: 'Disable chaos',
        targets: { roles: ['frontend', 'backend'] },
        steps: [
          { run: 'chaosFlagRemove' },
          { run: 'firewallFlush' },
          { run: 'serviceRestart', service: '*' },
        ],
        approvals: 2,
        risk: 'high',
        cooldownMs,
      },
      {
        id: 'drill-stop-keepalived',
        title: 'Stop keepalived (drill)',
        targets: { nodes: ['pi-a', 'pi-b'] },
        steps: [{ run: 'serviceStop', service: 'keepalived' }],
        approvals: 2,
        risk: 'high',
        cooldownMs,
      },
      {
        id: 'drill-start-keepalived',
        title: 'Start keepalived (drill)',
        targets: { nodes: ['pi-a', 'pi-b'] },
        steps: [{ run: 'serviceStart', service: 'keepalived' }],
        risk: 'low',
        cooldownMs,
      },
      {
        id: 'drill-stop-redis',
        title: 'Stop redis-server (drill)',
        targets: { roles: ['backend'] },
        steps: [{ run: 'serviceStop', service: 'redis-server' }],
        risk: 'medium',
        cooldownMs,
      },
    ],
    slack: {
      incidentChannel: channel,
      allowedChannels: [channel],
      approvers: { users: [...(params.approvers ?? LAB_APPROVERS)], groups: [LAB_APPROVER_GROUP] },
    },
    store: { path: params.storePath },
    // The bot's HTTP listener doubles as the keepalived hook target (DEFAULT_NOTIFY_URL).
    http: { port: PORTS.botHttp, host: '0.0.0.0' },
    log: { level: 'info' },
  };
}

/** Writes the config as YAML and validates it with the bot's own loader (throws ConfigError). */
export async function writeBotConfig(path: string, config: ConfigInput): Promise<LoadedConfig> {
  const header = '# okome-bot configuration for the network-namespace lab; generated, do not edit.\n';
  await writeFile(path, header + stringify(config), { mode: 0o644 });
  return loadConfig(path);
}
