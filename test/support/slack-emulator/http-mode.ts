// Slack's side of HTTP mode: requests signed with the signing secret, posted to the app's
// endpoint (Bolt's HTTPReceiver), with the exact content types Slack uses.

import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';

export type SignatureMode = 'valid' | 'forged' | 'missing' | 'stale';

export interface SignedRequestOptions {
  /** 'valid' by default; 'stale' signs correctly but 10 minutes in the past. */
  readonly signature?: SignatureMode;
  /** Sent as x-slack-retry-num, for Slack's HTTP redeliveries. */
  readonly retryNum?: number;
  /** Sent as x-slack-retry-reason (e.g. 'http_timeout'). */
  readonly retryReason?: string;
  readonly timeoutMs?: number;
}

export interface ReceiverReply {
  readonly status: number;
  readonly body: string;
  readonly latencyMs: number;
}

const STALE_BY_SEC = 600;

/** `v0=<hex HMAC-SHA256(secret, "v0:" + ts + ":" + body)>`, as Slack signs. */
export function signSlackRequest(signingSecret: string, timestampSec: number, body: string): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestampSec}:${body}`).digest('hex')}`;
}

export function formEncode(fields: Readonly<Record<string, string>>): string {
  return new URLSearchParams(fields).toString();
}

export function signatureHeaders(
  signingSecret: string,
  body: string,
  mode: SignatureMode,
  nowMs: number,
): Record<string, string> {
  const nowSec = Math.floor(nowMs / 1000);
  switch (mode) {
    case 'valid':
      return signed(signingSecret, nowSec, body);
    case 'stale':
      return signed(signingSecret, nowSec - STALE_BY_SEC, body);
    case 'forged':
      return signed(`not-${signingSecret}`, nowSec, body);
    case 'missing':
      return { 'x-slack-request-timestamp': String(nowSec) };
  }
}

function signed(secret: string, timestampSec: number, body: string): Record<string, string> {
  return {
    'x-slack-request-timestamp': String(timestampSec),
    'x-slack-signature': signSlackRequest(secret, timestampSec, body),
  };
}

/** POSTs `body` to the app; a fresh connection each time so no keep-alive socket outlives a test. */
export function postToApp(
  targetUrl: string,
  contentType: 'application/x-www-form-urlencoded' | 'application/json',
  body: string,
  signingSecret: string,
  options: SignedRequestOptions = {},
): Promise<ReceiverReply> {
  const headers: Record<string, string> = {
    'content-type': contentType,
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
    ...signatureHeaders(signingSecret, body, options.signature ?? 'valid', Date.now()),
    ...(options.retryNum === undefined ? {} : { 'x-slack-retry-num': String(options.retryNum) }),
    ...(options.retryReason === undefined ? {} : { 'x-slack-retry-reason': options.retryReason }),
  };
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const outgoing = request(targetUrl, { method: 'POST', headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        resolve({
          status: response.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          latencyMs: performance.now() - startedAt,
        });
      });
    });
    outgoing.setTimeout(options.timeoutMs ?? 10_000, () => {
      outgoing.destroy(new Error(`no answer from ${targetUrl} within ${options.timeoutMs ?? 10_000} ms`));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}
