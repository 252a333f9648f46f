import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import { describeIssues } from './alertmanager.js';

/**
 * keepalived's notify hook (contrib/keepalived-notify). Each node signs with its own secret (or
 * the shared one):
 *   x-okome-timestamp: <unix seconds>
 *   x-okome-node: <node name>
 *   x-okome-signature: v2=<hex HMAC-SHA256(secret, `${timestamp}.${node}.${rawBody}`)>
 * The headers are screened before any body byte is read: a stale timestamp or a node the
 * configuration does not name is refused unread. The timestamp bounds a captured request's
 * usefulness to the replay window; inside the window each signature is handled once (the
 * seen-event store remembers it): the same request again, as the notify script sends it to every
 * replica's URL (or as a replay), is answered as a duplicate and changes nothing.
 */

export const TIMESTAMP_HEADER = 'x-okome-timestamp';
export const NODE_HEADER = 'x-okome-node';
export const SIGNATURE_HEADER = 'x-okome-signature';
/** A notify is a few hundred bytes; the hook reads no more than this. */
export const KEEPALIVED_MAX_BODY_BYTES = 4096;

const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export const keepalivedStates = ['MASTER', 'BACKUP', 'FAULT', 'STOP'] as const;
export type KeepalivedState = (typeof keepalivedStates)[number];

export const keepalivedBodySchema = z.looseObject({
  node: z.string().regex(NODE_NAME, { error: 'must be a host name' }),
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
  | {
      readonly ok: true;
      readonly event: KeepalivedEvent;
      /** This signed request was handled before (another replica's URL, a retry, a replay). */
      readonly duplicate: boolean;
    }
  | {
      readonly ok: false;
      /** 401 authentication/replay, 403 unknown node, 400 not JSON, 422 wrong shape. */
      readonly status: 400 | 401 | 403 | 422;
      readonly error: string;
      readonly problems?: readonly string[];
      /** Set when the refusal is for a node the configuration does not name (to be audited). */
      readonly unknownNode?: string;
    };

/** True the first time a key is seen (SeenEventStore.markSeen). */
export type MarkSeen = (key: string, now: number) => Promise<boolean>;

/** Per-node secrets; a node without one signs with the shared secret, if there is one. */
export interface HookSecrets {
  readonly shared: string | undefined;
  readonly perNode: ReadonlyMap<string, string>;
}

/** The secret `node` must sign with: its own, else the shared one (a node's own secret wins). */
export function secretForNode(secrets: HookSecrets, node: string): string | undefined {
  return secrets.perNode.get(node) ?? secrets.shared;
}

export const hookEnabled = (secrets: HookSecrets): boolean =>
  secrets.shared !== undefined || secrets.perNode.size > 0;

export interface ScreenHookInput {
  readonly headers: IncomingHttpHeaders;
  readonly nowMs: number;
  readonly replayWindowSec: number;
  /** The configured node names: any other is refused (403). */
  readonly knownNodes: ReadonlySet<string>;
  readonly secrets: HookSecrets;
}

/** What the headers say once screened: the body is then read and checked against them. */
export interface ScreenedHook {
  readonly ok: true;
  readonly timestamp: string;
  readonly node: string;
  /** The signature's MAC, lower-case hex. */
  readonly mac: string;
  readonly secret: string;
}

export type HookRefusal = Extract<HookVerdict, { ok: false }>;

/** The signature keepalived-notify sends; exported for tests and other senders. */
export function signHook(
  secret: string,
  timestampSec: number | string,
  node: string,
  rawBody: Uint8Array | string,
): string {
  const mac = createHmac('sha256', secret).update(`${timestampSec}.${node}.`).update(rawBody).digest('hex');
  return `v2=${mac}`;
}

function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  // A repeated header is ambiguous: refuse it rather than pick one.
  return typeof value === 'string' ? value : undefined;
}

const refused = (error: string): HookRefusal => ({ ok: false, status: 401, error });

/**
 * Headers only, before the body is read. Order: presence, timestamp, signature form, node
 * (known, with a secret). Pure.
 */
export function screenKeepalivedHook(input: ScreenHookInput): ScreenedHook | HookRefusal {
  const { headers, nowMs } = input;
  const ts = single(headers, TIMESTAMP_HEADER)?.trim();
  const node = single(headers, NODE_HEADER)?.trim();
  const sig = single(headers, SIGNATURE_HEADER)?.trim();
  if (ts === undefined || sig === undefined || node === undefined) {
    return refused(`unsigned request: send ${TIMESTAMP_HEADER}, ${NODE_HEADER} and ${SIGNATURE_HEADER}`);
  }
  if (!/^\d{1,12}$/.test(ts)) return refused(`${TIMESTAMP_HEADER} must be unix seconds`);
  if (Math.abs(nowMs - Number(ts) * 1000) > input.replayWindowSec * 1000) {
    return refused(
      `${TIMESTAMP_HEADER} is outside the ${input.replayWindowSec} s window (check the node's clock)`,
    );
  }
  if (/^v1=/.test(sig)) {
    return refused(
      'v1 signatures (without the node) are no longer accepted: update contrib/keepalived-notify',
    );
  }
  const m = /^v2=([0-9a-fA-F]{64})$/.exec(sig);
  if (m?.[1] === undefined) return refused(`${SIGNATURE_HEADER} must be v2=<64 hex digits>`);
  if (!NODE_NAME.test(node)) return refused(`${NODE_HEADER} must be a host name`);
  if (!input.knownNodes.has(node)) {
    return { ok: false, status: 403, error: `unknown node ${node}`, unknownNode: node };
  }
  const secret = secretForNode(input.secrets, node);
  if (secret === undefined) {
    return { ok: false, status: 403, error: `no hook secret is configured for node ${node}` };
  }
  return { ok: true, timestamp: ts, node, mac: m[1].toLowerCase(), secret };
}

export interface VerifyHookBodyInput {
  readonly screened: ScreenedHook;
  readonly rawBody: Uint8Array;
  readonly nowMs: number;
  readonly markSeen: MarkSeen;
}

/**
 * The body against the screened headers. Order: signature (constant-time), JSON, shape, the
 * body's node = the signed header's, then replay, so that only genuine, well-formed events are
 * remembered. Pure apart from `markSeen`.
 */
export async function verifyKeepalivedBody(input: VerifyHookBodyInput): Promise<HookVerdict> {
  const { screened, rawBody, nowMs } = input;
  const given = Buffer.from(screened.mac, 'hex');
  const expected = Buffer.from(
    signHook(screened.secret, screened.timestamp, screened.node, rawBody).slice(3),
    'hex',
  );
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
  const body = parsed.data;
  if (body.node !== screened.node) {
    return { ok: false, status: 422, error: `the body's node differs from ${NODE_HEADER}` };
  }
  const duplicate = !(await input.markSeen(`ka:${screened.mac}`, nowMs));
  return {
    ok: true,
    duplicate,
    event: {
      node: body.node,
      instance: body.instance,
      state: body.state,
      at: body.at === undefined ? Number(screened.timestamp) * 1000 : Date.parse(body.at),
      ...(body.priority === undefined ? {} : { priority: body.priority }),
      receivedAt: nowMs,
    },
  };
}

export interface VerifyHookInput extends ScreenHookInput {
  readonly rawBody: Uint8Array;
  readonly markSeen: MarkSeen;
}

/** Screen and verify in one go (a caller that already holds the body). */
export async function verifyKeepalivedHook(input: VerifyHookInput): Promise<HookVerdict> {
  const screened = screenKeepalivedHook(input);
  if (!screened.ok) return screened;
  return verifyKeepalivedBody({
    screened,
    rawBody: input.rawBody,
    nowMs: input.nowMs,
    markSeen: input.markSeen,
  });
}
