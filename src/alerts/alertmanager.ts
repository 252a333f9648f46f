import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * Alertmanager's webhook payload, version 4. Objects are loose (Alertmanager adds fields over
 * time, e.g. `notification_reason`), but every field we read is type-checked.
 */

// RFC 3339 as Alertmanager writes it: nanoseconds, `Z` or an offset; zero time for "no end".
const timestamp = z.iso.datetime({ offset: true, error: 'must be an RFC 3339 timestamp' });
const labelMap = z.record(z.string(), z.string({ error: 'must be a string' }));
const status = z.enum(['firing', 'resolved'], { error: 'must be "firing" or "resolved"' });

export const alertSchema = z.looseObject({
  status,
  labels: labelMap,
  annotations: labelMap.default({}),
  startsAt: timestamp,
  endsAt: timestamp.optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().min(1).max(256),
});

export const alertBatchSchema = z.looseObject({
  version: z.literal('4', { error: 'must be "4" (Alertmanager webhook payload version 4)' }),
  groupKey: z.string().max(16_384),
  truncatedAlerts: z.int().min(0).default(0),
  status,
  receiver: z.string(),
  groupLabels: labelMap.default({}),
  commonLabels: labelMap.default({}),
  commonAnnotations: labelMap.default({}),
  externalURL: z.string().default(''),
  alerts: z.array(alertSchema),
});

export type Alert = z.output<typeof alertSchema>;
export type AlertBatch = z.output<typeof alertBatchSchema>;

export type ParseAlertmanagerResult =
  | { readonly ok: true; readonly batch: AlertBatch }
  | { readonly ok: false; readonly problems: readonly string[] };

const MAX_PROBLEMS = 20;

/** `alerts[3].labels.alertname` from a zod path. */
export function jsonPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else {
      const name = String(key);
      out += /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name)
        ? `${out === '' ? '' : '.'}${name}`
        : `[${JSON.stringify(name)}]`;
    }
  }
  return out === '' ? '(body)' : out;
}

/** Human-readable problems naming the JSON path, capped so a huge bad body gets a small answer. */
export function describeIssues(error: z.ZodError): string[] {
  const lines = error.issues.slice(0, MAX_PROBLEMS).map((i) => `${jsonPath(i.path)}: ${i.message}`);
  const more = error.issues.length - MAX_PROBLEMS;
  if (more > 0) lines.push(`… and ${more} more problem(s)`);
  return lines;
}

/** Validates a parsed JSON body as an Alertmanager v4 batch. Pure. */
export function parseAlertmanager(json: unknown): ParseAlertmanagerResult {
  const result = alertBatchSchema.safeParse(json);
  return result.success
    ? { ok: true, batch: result.data }
    : { ok: false, problems: describeIssues(result.error) };
}

/**
 * One alert delivery's identity: Alertmanager redelivers (at-least-once) and HA peers each
 * send the same notification, all with the same (groupKey, fingerprint, status, startsAt).
 * Hashed so keys have a fixed length whatever the groupKey's size.
 */
export function alertDedupeKey(
  groupKey: string,
  alert: Pick<Alert, 'fingerprint' | 'status' | 'startsAt'>,
): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([groupKey, alert.fingerprint, alert.status, alert.startsAt]))
    .digest('hex');
  return `am:${digest}`;
}
