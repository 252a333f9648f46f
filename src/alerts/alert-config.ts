import { z } from 'zod';
import { type IncidentNumber, incidentNumbers } from '../domain/runbook.js';

/**
 * The `alerts:` section of the configuration: which alert opens which runbook incident, and
 * the webhook limits. The lead plugs `alertsConfigSchema` into config/schema.ts.
 *
 * A `match` value is either an exact string or a regular expression written between slashes
 * (`/RedisDown|RedisUnavailable/`, optional trailing `i`). Like Alertmanager's `=~`, a regex is
 * anchored: it must match the whole label value. A missing label matches as the empty string.
 */

const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL_NAME_VALUE = /^[A-Za-z_][A-Za-z0-9_:.-]{0,199}$/;
const REGEX_FORM = /^\/(.*)\/(i?)$/s;

/** The RegExp of a slash-delimited match value, or undefined for an exact value. */
function regexOf(value: string): RegExp | undefined {
  const m = REGEX_FORM.exec(value);
  if (m === null) return undefined;
  return new RegExp(`^(?:${m[1] ?? ''})$`, m[2] === 'i' ? 'i' : '');
}

const matchValue = z
  .string()
  .max(1000)
  .superRefine((value, ctx) => {
    try {
      regexOf(value);
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: `invalid regular expression (${error instanceof Error ? error.message : String(error)})`,
        input: value,
      });
    }
  });

export const alertMappingEntrySchema = z.strictObject({
  match: z
    .record(z.string().regex(LABEL_NAME, { error: 'must be a Prometheus label name' }), matchValue)
    .refine((m) => Object.keys(m).length > 0, { error: 'match at least one label' }),
  incident: z.enum(incidentNumbers),
  // Unset: the `node` label, else `instance` (host part, port dropped).
  nodeLabel: z.string().regex(LABEL_NAME, { error: 'must be a Prometheus label name' }).optional(),
});

export type AlertMappingEntry = z.output<typeof alertMappingEntrySchema>;

/**
 * Typical alert names → runbook incidents, covering every alert of the shipped
 * contrib/prometheus/okome.rules.yml (a test keeps the two in step). First match wins; a
 * configured `mapping` replaces it.
 */
export const DEFAULT_ALERT_MAPPING: readonly AlertMappingEntry[] = Object.freeze([
  { match: { alertname: '/NginxDown|EdgeCacheDown|EdgeCacheSlow/' }, incident: '1' },
  { match: { alertname: '/RedisDown|RedisUnavailable/' }, incident: '2' },
  {
    match: { alertname: '/VipDown|VipUnreachable|KeepalivedNoMaster|KeepalivedDown|VipTwoHolders/' },
    incident: '3',
  },
  { match: { alertname: '/NodeDown|PiDown|HostDown/' }, incident: '4' },
  { match: { alertname: '/OrchestratorDown|UpstreamDown/' }, incident: '5' },
  { match: { alertname: '/StreamingSlow|UpstreamStreamingSlow/' }, incident: '5b' },
  { match: { alertname: '/CacheMissStorm|RedisHitRatioLow|RedisBudgetRunaway/' }, incident: '6' },
  { match: { alertname: '/ChaosEnabled|ChaosTestTriggered/' }, incident: '7' },
]);

export const MIB = 1_048_576;

export const alertsConfigSchema = z
  .strictObject({
    mapping: z.array(alertMappingEntrySchema).default(() => DEFAULT_ALERT_MAPPING.map((e) => ({ ...e }))),
    // Alertmanager batches are small; 1 MiB leaves room for large groups without inviting abuse.
    maxBodyBytes: z
      .int()
      .min(1024)
      .max(16 * MIB)
      .default(MIB),
    // Signed keepalived hooks older/newer than this are refused; the seen-event store must keep
    // keys at least this long (app.ts keeps them 24 h).
    replayWindowSec: z.int().min(10).max(3600).default(300),
    // After a VIP move the diagnosis waits for one holder and steady keepalived states, at most
    // this long: a diagnosis of a node still shutting down names the wrong cause.
    failoverSettleMs: z.int().min(0).max(60_000).default(5000),
    vipWatch: z
      .strictObject({
        enabled: z.boolean().default(true),
        intervalMs: z.int().min(200).max(600_000).default(2000),
        // One `ip -o monitor address` per VIP node over its SSH connection pushes changes; while
        // every stream is up, the last look saw every node and nothing awaits confirmation, polls
        // run only every idleIntervalMs. false: a poll every intervalMs (a command on each Pi).
        stream: z.boolean().default(true),
        idleIntervalMs: z.int().min(1000).max(3_600_000).default(30_000),
      })
      .prefault({}),
    // Alertmanager's API, for "Silence 1 h / 4 h" in alert threads. Unset url: no silence buttons.
    // Credentials come from the environment (OKOME_ALERTMANAGER_API_TOKEN for bearer;
    // OKOME_ALERTMANAGER_API_USER and OKOME_ALERTMANAGER_API_PASSWORD for basic).
    alertmanager: z
      .strictObject({
        url: z
          .url({ protocol: /^https?$/, error: 'must be an http(s) URL like http://127.0.0.1:9093' })
          .optional(),
        auth: z.enum(['none', 'bearer', 'basic']).default('none'),
        timeoutMs: z.int().min(100).max(60_000).default(5000),
      })
      .prefault({}),
    // The dead-man's switch: an always-firing alert (Watchdog) proves Prometheus → Alertmanager →
    // the bot works; unseen for timeoutMs, the bot says so in the incident channel. Set the
    // route's repeat_interval well below timeoutMs.
    deadman: z
      .strictObject({
        enabled: z.boolean().default(false),
        alertname: z.string().regex(LABEL_NAME_VALUE, { error: 'must be an alert name' }).default('Watchdog'),
        timeoutMs: z
          .int()
          .min(1000)
          .max(7 * 24 * 3_600_000)
          .default(15 * 60_000),
      })
      .prefault({}),
  })
  .prefault({});

export interface AlertIncident {
  readonly incident: IncidentNumber;
  /** The affected node: always a configured node's name. */
  readonly node?: string;
  /** The label named a node no configuration knows: its raw value, never shown as a name. */
  readonly unknownNode?: string;
}

/** What incidentForAlert needs to know about configured nodes to resolve `instance="10.0.0.20:9100"`. */
export interface KnownNode {
  readonly name: string;
  readonly address: string;
}

// Compiled once per distinct pattern; patterns come from the (bounded) configuration.
const compiled = new Map<string, RegExp | undefined>();

function matches(pattern: string, value: string): boolean {
  let re = compiled.get(pattern);
  if (re === undefined && !compiled.has(pattern)) {
    try {
      re = regexOf(pattern);
    } catch {
      // The schema refuses bad patterns; a hand-built mapping with one matches nothing.
      compiled.set(pattern, /(?!)/);
      return false;
    }
    compiled.set(pattern, re);
  }
  return re === undefined ? pattern === value : re.test(value);
}

/** `host:port`, `[v6]:port` or `host` → host. */
function hostOf(value: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  if (v6?.[1] !== undefined) return v6[1];
  const m = /^([^:]+):\d+$/.exec(value);
  return m?.[1] ?? value;
}

function labelValue(labels: Readonly<Record<string, string>>, name: string): string | undefined {
  return Object.hasOwn(labels, name) ? labels[name] : undefined;
}

/**
 * The incident an alert stands for, or undefined when no mapping entry matches (the caller
 * records it as a generic alert). Pure.
 */
export function incidentForAlert(
  labels: Readonly<Record<string, string>>,
  mapping: readonly AlertMappingEntry[],
  nodes: readonly KnownNode[] = [],
): AlertIncident | undefined {
  const entry = mapping.find((e) =>
    Object.entries(e.match).every(([name, pattern]) => matches(pattern, labelValue(labels, name) ?? '')),
  );
  if (entry === undefined) return undefined;
  const raw =
    entry.nodeLabel !== undefined
      ? labelValue(labels, entry.nodeLabel)
      : (labelValue(labels, 'node') ?? labelValue(labels, 'instance'));
  if (raw === undefined || raw === '') return { incident: entry.incident };
  const host = hostOf(raw);
  const known = nodes.find((n) => n.name === host || n.address === host || n.name === raw);
  return known === undefined
    ? { incident: entry.incident, unknownNode: raw }
    : { incident: entry.incident, node: known.name };
}
