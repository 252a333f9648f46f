import { z } from 'zod';
import { alertsConfigSchema } from '../alerts/alert-config.js';
import { metricsConfigSchema } from '../metrics/metrics-config.js';
import { DEFAULT_PACING } from '../outbox/pacing.js';

/**
 * The configuration's shape. Parsed once at start-up (see load-config.ts) and frozen.
 * Strict objects everywhere: a misspelt key is an error, not a silently ignored setting.
 */

const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const SERVICE = /^[A-Za-z0-9][A-Za-z0-9@._-]{0,63}$/;
// OpenSSH's fingerprint form: "SHA256:" + unpadded base64 of a 32-byte digest.
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const SLACK_CHANNEL = /^[CGD][A-Z0-9]{2,}$/;
const SLACK_USER = /^[UW][A-Z0-9]{2,}$/;
const SLACK_USERGROUP = /^S[A-Z0-9]{2,}$/;

export const nodeNameSchema = z
  .string()
  .regex(NAME, { error: 'must be lower-case letters, digits and dashes' });
export const serviceNameSchema = z.string().regex(SERVICE, { error: 'must be a systemd unit name' });
// A name whose last label is all digits is a mistyped address, not a host name.
const hostSchema = z.union(
  [
    z.ipv4(),
    z
      .string()
      .regex(HOSTNAME)
      .refine((s) => !/(^|\.)\d+$/.test(s)),
  ],
  {
    error: 'must be an IPv4 address or a host name',
  },
);
const portSchema = z.int().min(1).max(65_535);
const percentSchema = z.number().min(1).max(100);
const msSchema = z.int().min(1).max(600_000);

/**
 * What the bot runs on nodes, per purpose. `{service}` is replaced by a service name taken
 * from the node's own configured list, never from chat text.
 */
export const commandPurposes = [
  'serviceState',
  'serviceRestart',
  // Drills only (/okome drill): a deliberate stop, and the start that undoes it.
  'serviceStop',
  'serviceStart',
  'vipOwnership',
  'disk',
  'memory',
  'chaosFlag',
  'chaosFlagRemove',
  'firewallRules',
  'firewallFlush',
  'nginxConfig',
  'accessLogTail',
  'journalTail',
  'prewarmTimer',
  'linkState',
] as const;
export type CommandPurpose = (typeof commandPurposes)[number];

/** Purposes whose command names a service (the `{service}` placeholder). */
export const servicePurposes: ReadonlySet<CommandPurpose> = new Set([
  'serviceState',
  'serviceRestart',
  'serviceStop',
  'serviceStart',
]);

export const defaultCommands: Readonly<Record<CommandPurpose, string>> = Object.freeze({
  serviceState: 'systemctl is-active {service}',
  serviceRestart: 'sudo systemctl restart {service}',
  serviceStop: 'sudo systemctl stop {service}',
  serviceStart: 'sudo systemctl start {service}',
  vipOwnership: 'ip -o addr show',
  disk: 'df -P /',
  memory: 'cat /proc/meminfo',
  chaosFlag: 'test -e /etc/okome/CHAOS_ENABLE && echo present || echo absent',
  chaosFlagRemove: 'sudo rm -f /etc/okome/CHAOS_ENABLE',
  // Every table (filter, nat, mangle, raw…): `iptables -S` shows filter only, where a chaos
  // rule in nat would go unseen.
  firewallRules: 'sudo iptables-save',
  // iptables flushes one table per call; each part is its own exact sudoers entry.
  firewallFlush:
    'sudo iptables -F && sudo iptables -t nat -F && sudo iptables -t mangle -F && sudo iptables -t raw -F',
  nginxConfig: 'sudo nginx -T',
  accessLogTail: 'tail -n 500 /var/log/nginx/okome_access.log',
  journalTail: 'journalctl -u keepalived --since "10 minutes ago" --no-pager',
  prewarmTimer: 'systemctl status okome-prewarm.timer --no-pager',
  linkState: 'ip -o link show',
});

const commandString = z
  .string()
  .min(1)
  .max(1000)
  .refine((s) => !/[\r\n]/.test(s), { error: 'must be a single line' });

const commandsSchema = z.strictObject(
  Object.fromEntries(commandPurposes.map((p) => [p, commandString.optional()])) as Record<
    CommandPurpose,
    z.ZodOptional<typeof commandString>
  >,
);

const sshSchema = z.strictObject({
  port: portSchema.default(22),
  user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: 'must be a Unix user name' }),
  privateKeyPath: z.string().min(1),
  hostKey: z.string().regex(FINGERPRINT, { error: 'must be an OpenSSH SHA256 fingerprint' }),
});

export const nodeRoles = ['frontend', 'backend', 'spare'] as const;

const nodeSchema = z.strictObject({
  name: nodeNameSchema,
  roles: z.array(z.enum(nodeRoles)).min(1),
  address: hostSchema,
  httpPort: portSchema.default(80),
  ssh: sshSchema,
  services: z.array(serviceNameSchema).min(1),
  holdsVip: z.boolean().default(true),
  commands: commandsSchema.optional(),
  // The environment variable holding this node's own keepalived-notify secret (the secret itself
  // never goes in the file); unset: the node signs with OKOME_KEEPALIVED_SECRET.
  hookSecretEnv: z
    .string()
    .regex(/^[A-Z_][A-Z0-9_]{0,63}$/, { error: 'must be an environment variable name like OKOME_HOOK_PI_A' })
    .optional(),
});

const targetSchema = z
  .strictObject({
    nodes: z.array(nodeNameSchema).min(1).optional(),
    roles: z.array(z.enum(nodeRoles)).min(1).optional(),
  })
  .refine((t) => t.nodes !== undefined || t.roles !== undefined, {
    error: 'name target nodes or roles',
  });

const actionStepSchema = z.union([
  // service '*' = every service the target node runs, in its configured order (disable-chaos).
  z.strictObject({
    run: z.enum(commandPurposes),
    service: z.union([serviceNameSchema, z.literal('*')]).optional(),
  }),
  z.strictObject({ redis: z.literal('flushdb') }),
]);

/** "disable-chaos" → "Disable chaos": an action's title when the configuration gives none. */
export function titleFromActionId(id: string): string {
  const words = id.replaceAll('-', ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const actionSchema = z
  .strictObject({
    id: z.string().regex(NAME, { error: 'must be lower-case letters, digits and dashes' }),
    // Short: the Approve button says "Approve: <title> on <nodes>" within Slack's 75 characters;
    // the card's body spells out every step.
    title: z.string().min(1).max(60).optional(),
    targets: targetSchema,
    steps: z.array(actionStepSchema).min(1),
    approvals: z.int().min(1).max(5).default(1),
    risk: z.enum(['low', 'medium', 'high']).default('medium'),
    // Restarting the same thing on both VIP holders at once would drop the VIP.
    sequential: z.boolean().default(true),
    precondition: z.array(z.string().min(1)).default([]),
    verify: z
      .strictObject({ checks: z.array(z.string().min(1)).default([]), windowMs: msSchema.default(30_000) })
      .prefault({}),
    cooldownMs: z.int().min(0).max(86_400_000).default(300_000),
    dryRun: z.boolean().default(false),
  })
  .transform((action) => ({ ...action, title: action.title ?? titleFromActionId(action.id) }));

/** Slack user IDs and user-group IDs. */
const peopleSchema = z
  .strictObject({
    users: z
      .array(z.string().regex(SLACK_USER, { error: 'must be a Slack user ID like U0123ABCD' }))
      .default([]),
    groups: z
      .array(z.string().regex(SLACK_USERGROUP, { error: 'must be a Slack user-group ID like S0123ABCD' }))
      .default([]),
  })
  .prefault({});

const KIB = 1024;
const timeoutSchema = z.int().min(100).max(600_000);

/**
 * Port 0 picks a free port (tests). `host` unset: HTTP mode listens on every address (Slack must
 * reach it), Socket Mode on loopback only (set it for keepalived notifies from the nodes).
 */
const httpSchema = z
  .strictObject({
    port: z.int().min(0).max(65_535).default(3000),
    host: z.string().min(1).optional(),
    // A LAN attacker's slow or endless requests are cut by these; legitimate senders (Slack,
    // Alertmanager, keepalived-notify) send a small request at once.
    headersTimeoutMs: timeoutSchema.default(10_000),
    requestTimeoutMs: timeoutSchema.default(30_000),
    keepAliveTimeoutMs: timeoutSchema.default(5_000),
    maxConnections: z.int().min(16).max(65_536).default(512),
    // One LAN host's share (a reverse proxy in front of HTTP mode counts as one host).
    maxConnectionsPerAddress: z.int().min(4).max(65_536).default(32),
    // Every request body buffered at once, across connections.
    maxInFlightBodyBytes: z
      .int()
      .min(64 * KIB)
      .max(256 * 1024 * KIB)
      .default(8 * 1024 * KIB),
  })
  .refine((h) => h.headersTimeoutMs <= h.requestTimeoutMs, {
    error: 'headersTimeoutMs must not exceed requestTimeoutMs',
    path: ['headersTimeoutMs'],
  })
  .prefault({});

const slackSchema = z.strictObject({
  incidentChannel: z.string().regex(SLACK_CHANNEL, { error: 'must be a Slack channel ID like C0123ABCD' }),
  allowedChannels: z
    .array(z.string().regex(SLACK_CHANNEL, { error: 'must be a Slack channel ID like C0123ABCD' }))
    .default([]),
  approvers: peopleSchema,
  /** On-call people who may acknowledge (and later resolve) incidents besides the approvers. */
  responders: peopleSchema,
  approvalTtlMs: z.int().min(10_000).max(86_400_000).default(900_000),
  /**
   * Post-incident reports as Markdown files in the thread (Slack's external upload; the app
   * needs the `files:write` scope). false: the report is posted as a message instead.
   */
  uploads: z.boolean().default(true),
  /**
   * New posts per channel: a token bucket of `burst` refilled one per `intervalMs` (see
   * src/outbox/pacing.ts: at most 30 posts in any 30 s). Slack allows about one message per
   * second per channel; lower only against a test workspace or emulator (tests of many posts).
   */
  postPacing: z
    .strictObject({
      intervalMs: z.int().min(10).max(60_000).default(DEFAULT_PACING.postIntervalMs),
      burst: z.int().min(1).max(20).default(DEFAULT_PACING.postBurst),
    })
    .prefault({}),
});

export const configSchema = z
  .strictObject({
    nodes: z.array(nodeSchema).min(1),
    vip: z.strictObject({
      address: z.ipv4({ error: 'must be an IPv4 address' }),
      httpPort: portSchema.default(80),
    }),
    orchestrator: z.strictObject({
      baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
      healthPath: z.string().startsWith('/').default('/health'),
      apiProbePath: z.string().startsWith('/').default('/api/planner'),
      gpuHost: hostSchema.optional(),
    }),
    redis: z.strictObject({
      host: hostSchema,
      port: portSchema.default(6379),
      db: z.int().min(0).max(15).default(0),
      rateLimit: z
        .strictObject({ limit: z.int().min(1).default(60), windowSec: z.int().min(1).default(60) })
        .prefault({}),
      // The last INFO sample is kept in a file of its own (default: beside store.path, named
      // `<store.path>.redis-sample.json`), so a one-shot `okome status` takes its hit-ratio
      // window from there instead of waiting a second for a second sample; older than
      // maxAgeSec, or from before a Redis restart (run_id), it is not used.
      sample: z
        .strictObject({
          maxAgeSec: z.int().min(1).max(86_400).default(900),
          path: z.string().min(1).optional(),
        })
        .prefault({}),
    }),
    thresholds: z
      .strictObject({
        diskPercent: percentSchema.default(80),
        memoryPercent: percentSchema.default(90),
        redisHitRatio: z.number().min(0).max(1).default(0.5),
        nginxHitRatio: z.number().min(0).max(1).default(0.3),
        latencyMs: msSchema.default(1000),
        accessLogLines: z.int().min(10).max(100_000).default(500),
        // A windowed symptom (a hit ratio, a budget at its limit) counts as recovered only when
        // it has been healthy over this many seconds of samples since the incident was last seen.
        recoverySec: z.int().min(1).max(86_400).default(300),
      })
      .prefault({}),
    timeouts: z
      .strictObject({
        statusMs: msSchema.default(8000),
        checkMs: msSchema.default(4000),
        httpMs: msSchema.default(2000),
        redisMs: msSchema.default(1500),
        sshConnectMs: msSchema.default(3000),
        sshExecMs: msSchema.default(4000),
        maxOutputBytes: z.int().min(1024).max(16_777_216).default(1_048_576),
      })
      .prefault({}),
    // Firewall rules the nodes are expected to carry besides the default policies, as
    // `iptables -S` prints them, with `-t TABLE ` first outside filter.
    firewall: z.strictObject({ allowedRules: z.array(z.string().min(1)).default([]) }).prefault({}),
    commands: commandsSchema.prefault({}),
    diagnostics: z
      .strictObject({
        // One SSH exec per node per status runs all its read-only commands (false: one per check).
        // Measured side by side (docs/benchmarks.md): no slower than one exec per check, with
        // one SSH channel instead of ~12 and less CPU on each Pi.
        batchSsh: z.boolean().default(true),
      })
      .prefault({}),
    actions: z.array(actionSchema).default([]),
    slack: slackSchema,
    alerts: alertsConfigSchema,
    remediation: z
      .strictObject({
        // Show the exact commands and hosts, run nothing (every action).
        dryRun: z.boolean().default(false),
        // A restart can take longer than a diagnostic command.
        stepTimeoutMs: msSchema.default(60_000),
      })
      .prefault({}),
    store: z
      .strictObject({
        // sqlite: one file beside the bot (the default); postgres: OKOME_DATABASE_URL, never this file.
        kind: z.enum(['sqlite', 'postgres']).default('sqlite'),
        path: z.string().min(1).default('okome.db'),
        // postgres only: several `okome serve` on one database (an elected leader runs the
        // singletons, replicas share the outbox) instead of one bot per database.
        replicas: z.boolean().default(false),
        // Replicas: how long a replica's claim on an outbox row lasts; a replica that dies while
        // sending leaves its rows to another after this. Longer than a Slack call can take (10 s).
        outboxLeaseMs: msSchema.min(11_000).default(30_000),
      })
      .refine((store) => !store.replicas || store.kind === 'postgres', {
        message: 'store.replicas needs store.kind: postgres (a SQLite store has one bot, its serve lock)',
        path: ['replicas'],
      })
      .prefault({}),
    // The bot's one HTTP server (src/http): Slack's requests in HTTP mode, /healthz, the webhooks.
    http: httpSchema,
    metrics: metricsConfigSchema,
    log: z
      .strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info') })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    const names = new Map<string, number>();
    config.nodes.forEach((node, i) => {
      const first = names.get(node.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['nodes', i, 'name'],
          message: `duplicate node name (also nodes.${first}.name)`,
          input: node.name,
        });
      } else names.set(node.name, i);
      if (node.address === config.vip.address) {
        ctx.addIssue({
          code: 'custom',
          path: ['nodes', i, 'address'],
          message: 'a node cannot have the VIP as its own address',
          input: node.address,
        });
      }
    });
    const roles = new Set(config.nodes.flatMap((n) => n.roles));
    const ids = new Map<string, number>();
    config.actions.forEach((action, i) => {
      if (ids.has(action.id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['actions', i, 'id'],
          message: 'duplicate action id',
          input: action.id,
        });
      } else ids.set(action.id, i);
      action.targets.nodes?.forEach((name, j) => {
        if (!names.has(name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['actions', i, 'targets', 'nodes', j],
            message: 'names no configured node',
            input: name,
          });
        }
      });
      action.targets.roles?.forEach((role, j) => {
        if (!roles.has(role)) {
          ctx.addIssue({
            code: 'custom',
            path: ['actions', i, 'targets', 'roles', j],
            message: 'no configured node has this role',
            input: role,
          });
        }
      });
      action.steps.forEach((step, j) => {
        if ('run' in step && servicePurposes.has(step.run) !== (step.service !== undefined)) {
          ctx.addIssue({
            code: 'custom',
            path: ['actions', i, 'steps', j],
            message:
              step.service === undefined
                ? `purpose ${step.run} needs a service`
                : `purpose ${step.run} takes no service`,
            input: step,
          });
        }
      });
    });
  });

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type NodeConfig = Config['nodes'][number];
export type ActionConfig = Config['actions'][number];
export type ActionStep = ActionConfig['steps'][number];
