import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import { describeIssues } from './alertmanager.js';

/**
 * keepalived's notify hook (contrib/keepalived-notify). Authenticated with a shared secret:
 *   x-okome-timestamp: <unix seconds>
 *   x-okome-signature: v1=<hex HMAC-SHA256(secret, `${timestamp}.${rawBody}`)>
 * The timestamp bounds a captured request's usefulness to the replay window; inside the window
 * each signature is accepted once (the seen-event store remembers it).
 */

export const TIMESTAMP_HEADER = 'x-okome-timestamp';
export const SIGNATURE_HEADER = 'x-okome-signature';

export const keepalivedStates = ['MASTER', 'BACKUP', 'FAULT', 'STOP'] as const;
export type KeepalivedState = (typeof keepalivedStates)[number];

export const keepalivedBodySchema = z.looseObject({
  node: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, { error: 'must be a host name' }),
  instance: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, { error: 'must be a VRRP instance name' }),
  state: z.enum(keepalivedStates, { error: 'must be MASTER, BACKUP, FAULT or STOP' }),
  at: z.iso.datetime({ offset: true, error: 'must be an RFC 3339 timestamp' }).optional(),
  priority: z.int().min(0).max(255).optional(),
  // Makes two identical transitions within one second distinct requests (not replays).
  nonce: z.string().max(64).optional(),
});

export interface KeepalivedEvent {
  readonly node: string;
  readonly instance: string;
  readonly state: KeepalivedState;
  /** When the node says the transition happened (epoch ms): `at` if sent, else the signed timestamp. */
  readonly at: number;
  readonly priority?: number;
  readonly receivedAt: number;
}

export type HookVerdict =
  | { readonly ok: true; readonly event: KeepalivedEvent }
  | {
      readonly ok: false;
      /** 401 authentication/replay, 400 not JSON, 422 wrong shape. */
      readonly status: 400 | 401 | 422;
      readonly error: string;
      readonly problems?: readonly string[];
    };

/** True the first time a key is seen (SeenEventStore.markSeen). */
export type MarkSeen = (key: string, now: number) => Promise<boolean>;

export interface VerifyHookInput {
  readonly headers: IncomingHttpHeaders;
  readonly rawBody: Uint8Array;
  readonly secret: string;
  readonly nowMs: number;
  readonly replayWindowSec: number;
  readonly markSeen: MarkSeen;
}

/** The signature keepalived-notify sends; exported for tests and other senders. */
export function signHook(
  secret: string,
  timestampSec: number | string,
  rawBody: Uint8Array | string,
): string {
  const mac = createHmac('sha256', secret).update(`${timestampSec}.`).update(rawBody).digest('hex');
  return `v1=${mac}`;
}

function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  // A repeated header is ambiguous: refuse it rather than pick one.
  return typeof value === 'string' ? value : undefined;
}

const refused = (error: string): HookVerdict => ({ ok: false, status: 401, error });

/**
 * Verifies and parses one hook request. Order: headers, timestamp, signature (constant-time),
 * body, then replay, so that only genuine, well-formed events are remembered. Pure apart from
 * `markSeen`.
 */
export async function verifyKeepalivedHook(input: VerifyHookInput): Promise<HookVerdict> {
  const { headers, rawBody, secret, nowMs } = input;
  const ts = single(headers, TIMESTAMP_HEADER)?.trim();
  const sig = single(headers, SIGNATURE_HEADER)?.trim();
  if (ts === undefined || sig === undefined) {
    return refused(`unsigned request: send ${TIMESTAMP_HEADER} and ${SIGNATURE_HEADER}`);
  }
  if (!/^\d{1,12}$/.test(ts)) return refused(`${TIMESTAMP_HEADER} must be unix seconds`);
  const signedAtMs = Number(ts) * 1000;
  if (Math.abs(nowMs - signedAtMs) > input.replayWindowSec * 1000) {
    return refused(
      `${TIMESTAMP_HEADER} is outside the ${input.replayWindowSec} s window (check the node's clock)`,
    );
  }
  const m = /^v1=([0-9a-fA-F]{64})$/.exec(sig);
  if (m?.[1] === undefined) return refused(`${SIGNATURE_HEADER} must be v1=<64 hex digits>`);
  const given = Buffer.from(m[1].toLowerCase(), 'hex');
  const expected = Buffer.from(signHook(secret, ts, rawBody).slice(3), 'hex');
  if (!timingSafeEqual(given, expected)) return refused('bad signature');

  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(rawBody));
  } catch (error) {
    return {
      ok: false,
      status: 400,
      error: `invalid JSON: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  const parsed = keepalivedBodySchema.safeParse(json);
  if (!parsed.success) {
    return {
      ok: false,
      status: 422,
      error: 'invalid keepalived event',
      problems: describeIssues(parsed.error),
    };
  }
  if (!(await input.markSeen(`ka:${m[1].toLowerCase()}`, nowMs))) return refused('replayed request');
  const body = parsed.data;
  return {
    ok: true,
    event: {
      node: body.node,
      instance: body.instance,
      state: body.state,
      at: body.at === undefined ? signedAtMs : Date.parse(body.at),
      ...(body.priority === undefined ? {} : { priority: body.priority }),
      receivedAt: nowMs,
    },
  };
}
