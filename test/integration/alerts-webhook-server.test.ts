import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AlertBatch } from '../../src/alerts/alertmanager.js';
import {
  type KeepalivedEvent,
  NODE_HEADER,
  SIGNATURE_HEADER,
  signHook,
  TIMESTAMP_HEADER,
} from '../../src/alerts/keepalived-hook.js';
import {
  type AlertDelivery,
  createAlertmanagerRoute,
  createKeepalivedRoute,
} from '../../src/alerts/webhook-routes.js';
import { type HttpRoute, type HttpServerHandle, startHttpServer } from '../../src/http/http-server.js';
import { createLogger } from '../../src/logger.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';

const TOKEN = 'alertmanager-token-0123456789';
const SECRET = 'keepalived-secret-0123456789';
const LIMIT = 64 * 1024;

interface Received {
  alerts: Array<{ batch: AlertBatch; delivery: AlertDelivery }>;
  hooks: KeepalivedEvent[];
  deferredAfterEnd: boolean[];
  logs: Array<Record<string, unknown>>;
}

const received: Received = { alerts: [], hooks: [], deferredAfterEnd: [], logs: [] };
let seen = new Set<string>();
let storeBroken = false;
let throwInCallback = false;
let clockSkewMs = 0;
/** Hand-overs scheduled through `defer`, and those that have run. */
const deferred = { scheduled: 0, ran: 0 };
let server: HttpServerHandle;
let disabled: HttpServerHandle;
let base: string;

const markSeen = async (key: string) => {
  if (storeBroken) throw new Error('database is locked');
  if (seen.has(key)) return false;
  seen.add(key);
  return true;
};

beforeAll(async () => {
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => received.logs.push(JSON.parse(line) as Record<string, unknown>) },
  });
  let lastRes: ServerResponse | undefined;
  // Records whether the response had ended when the callback was scheduled.
  const defer = (fn: () => void) => {
    received.deferredAfterEnd.push(lastRes?.writableEnded === true);
    deferred.scheduled += 1;
    setImmediate(() => {
      try {
        fn();
      } finally {
        deferred.ran += 1;
      }
    });
  };
  const track = (route: HttpRoute): HttpRoute => ({
    ...route,
    handle: (req, res, body) => {
      lastRes = res;
      route.handle(req, res, body);
    },
  });
  const common = { markSeen, logger, defer };
  const knownNodes = new Set(['pi-a', 'pi-b']);
  const alertmanager = createAlertmanagerRoute({
    ...common,
    maxBodyBytes: LIMIT,
    token: TOKEN,
    onAlerts: (batch, delivery) => {
      if (throwInCallback) throw new Error('callback exploded');
      received.alerts.push({ batch, delivery });
    },
  });
  const keepalived = createKeepalivedRoute({
    ...common,
    secrets: { shared: SECRET, perNode: new Map() },
    knownNodes,
    replayWindowSec: 300,
    now: () => Date.now() + clockSkewMs,
    onKeepalived: async (event) => {
      if (throwInCallback) throw new Error('async callback exploded');
      received.hooks.push(event);
    },
  });
  server = await startHttpServer({
    port: 0,
    host: '127.0.0.1',
    logger,
    limits: { lingerMs: 500 },
    routes: [
      track(alertmanager),
      track(keepalived),
      { path: '/healthz', method: 'GET', maxBodyBytes: 0, handle: (_req, res) => res.end('ok\n') },
    ],
  });
  base = `http://127.0.0.1:${server.port}`;
  const noop = () => {};
  disabled = await startHttpServer({
    port: 0,
    host: '127.0.0.1',
    routes: [
      createAlertmanagerRoute({ ...common, maxBodyBytes: LIMIT, token: undefined, onAlerts: noop }),
      createKeepalivedRoute({
        ...common,
        secrets: { shared: undefined, perNode: new Map() },
        knownNodes,
        replayWindowSec: 300,
        onKeepalived: noop,
      }),
    ],
  });
});

afterAll(async () => {
  await server?.close();
  await disabled?.close();
});

beforeEach(() => {
  received.alerts = [];
  received.hooks = [];
  received.deferredAfterEnd = [];
  received.logs = [];
  seen = new Set();
  storeBroken = false;
  throwInCallback = false;
  clockSkewMs = 0;
});

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Every hand-over scheduled so far has run, and a rejected one has been logged. The handler
 * schedules before the client sees the response, so this covers every request answered.
 */
async function settle(): Promise<void> {
  while (deferred.ran < deferred.scheduled) await nextTurn();
  await nextTurn();
}

function alertPayload(overrides: Record<string, unknown> = {}, alert: Record<string, unknown> = {}) {
  return {
    version: '4',
    groupKey: '{}:{alertname="RedisDown"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'okome',
    groupLabels: { alertname: 'RedisDown' },
    commonLabels: { alertname: 'RedisDown' },
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'RedisDown', instance: 'pi-b:9121' },
        annotations: {},
        startsAt: '2024-05-01T03:12:07.1Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus/graph',
        fingerprint: 'aaaa',
        ...alert,
      },
    ],
    ...overrides,
  };
}

async function post(
  path: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
  origin = base,
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${origin}${path}`, { method: 'POST', body, headers });
  const text = await res.text();
  return {
    status: res.status,
    json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
    headers: res.headers,
  };
}

const amHeaders = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
const postAlerts = (body: unknown, headers: Record<string, string> = amHeaders) =>
  post('/alerts/alertmanager', typeof body === 'string' ? body : JSON.stringify(body), headers);

function signedHook(body: string, tsSec = Math.floor(Date.now() / 1000), node = 'pi-b') {
  return {
    'content-type': 'application/json',
    [TIMESTAMP_HEADER]: String(tsSec),
    [NODE_HEADER]: node,
    [SIGNATURE_HEADER]: signHook(SECRET, tsSec, node, body),
  };
}
const HOOK_BODY = JSON.stringify({ node: 'pi-b', instance: 'VI_1', state: 'MASTER', nonce: 'n1' });

/** Streams `total` bytes in chunks without a Content-Length; resolves with the status or the error. */
function streamBody(path: string, total: number, headers: Record<string, string>): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpRequest(`${base}${path}`, { method: 'POST', headers });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (error) => resolve(error.message));
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

describe('POST /alerts/alertmanager', () => {
  it('accepts a batch with 202, then hands it over after the response', async () => {
    const res = await postAlerts(alertPayload());
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ accepted: 1, duplicates: 0 });
    await settle();
    expect(received.alerts).toHaveLength(1);
    expect(received.alerts[0]?.batch.alerts[0]?.labels.alertname).toBe('RedisDown');
    expect(received.alerts[0]?.delivery).toMatchObject({ duplicates: 0, repeated: [] });
    expect(received.deferredAfterEnd).toEqual([true]);
  });

  it('counts redeliveries and HA-peer copies as duplicates, passes only new alerts on', async () => {
    expect((await postAlerts(alertPayload())).json).toEqual({ accepted: 1, duplicates: 0 });
    expect((await postAlerts(alertPayload())).json).toEqual({ accepted: 0, duplicates: 1 });
    // The HA peer: same group and alert, its own externalURL.
    expect((await postAlerts(alertPayload({ externalURL: 'http://am-2:9093' }))).json).toEqual({
      accepted: 0,
      duplicates: 1,
    });
    const resolved = alertPayload(
      { status: 'resolved' },
      { status: 'resolved', endsAt: '2024-05-01T03:20:00Z' },
    );
    expect((await postAlerts(resolved)).json).toEqual({ accepted: 1, duplicates: 0 });
    expect((await postAlerts(resolved)).json).toEqual({ accepted: 0, duplicates: 1 });
    const refire = alertPayload({}, { startsAt: '2024-05-01T04:00:00Z' });
    const both = alertPayload({}, {});
    both.alerts.push(...refire.alerts);
    expect((await postAlerts(both)).json).toEqual({ accepted: 1, duplicates: 1 });
    await settle();
    const fresh = received.alerts.map((a) => a.batch.alerts.length);
    expect(fresh).toEqual([1, 0, 0, 1, 0, 1]);
    expect(received.alerts[5]?.delivery.repeated).toHaveLength(1);
  });

  it('answers 202 without a callback for an empty batch', async () => {
    expect((await postAlerts(alertPayload({ alerts: [] }))).json).toEqual({ accepted: 0, duplicates: 0 });
    await settle();
    expect(received.alerts).toEqual([]);
  });

  it('refuses a missing, wrong or non-Bearer token with 401 before reading the body', async () => {
    const body = alertPayload();
    for (const authorization of [
      undefined,
      `Bearer ${TOKEN}x`,
      `Basic ${TOKEN}`,
      'Bearer',
      `bearer  ${TOKEN.slice(1)}`,
    ]) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (authorization !== undefined) headers.authorization = authorization;
      const res = await postAlerts(body, headers);
      expect(res.status).toBe(401);
    }
    expect((await postAlerts(body, { ...amHeaders, authorization: `bearer ${TOKEN}` })).status).toBe(202);
    expect(received.logs.filter((l) => l.status === 401)).toHaveLength(5);
    await settle();
    expect(received.alerts).toHaveLength(1);
  });

  it('415 unless the content type is JSON (charset utf-8 allowed)', async () => {
    const body = JSON.stringify(alertPayload());
    for (const ct of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
    ]) {
      const res = await postAlerts(body, { ...amHeaders, 'content-type': ct });
      expect(res.status).toBe(415);
      expect(res.json.error).toBe('content-type must be application/json');
    }
    const ok = await postAlerts(body, { ...amHeaders, 'content-type': 'Application/JSON; charset="UTF-8"' });
    expect(ok.status).toBe(202);
  });

  it('400 for invalid JSON or invalid UTF-8', async () => {
    const res = await postAlerts('{"version":', amHeaders);
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/^invalid JSON/);
    const bytes = await post(
      '/alerts/alertmanager',
      new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]),
      amHeaders,
    );
    expect(bytes.status).toBe(400);
  });

  it('422 with the problems list for a wrong shape; nothing remembered', async () => {
    const res = await postAlerts(alertPayload({ version: 3 }, { labels: { alertname: 1 } }));
    expect(res.status).toBe(422);
    expect(res.json.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^version: /),
        'alerts[0].labels.alertname: must be a string',
      ]),
    );
    expect(seen.size).toBe(0);
  });

  it('413 past the limit, declared or streamed, without buffering the rest', async () => {
    const big = JSON.stringify(alertPayload({ pad: 'x'.repeat(LIMIT) }));
    const declared = await postAlerts(big);
    expect(declared.status).toBe(413);
    expect(declared.json.error).toBe(`body larger than ${LIMIT} bytes`);
    expect(await streamBody('/alerts/alertmanager', 4 * LIMIT, amHeaders)).toBe(413);
    // Just under the limit is fine (unknown keys such as the pad are tolerated).
    const under = JSON.stringify(alertPayload({ pad: 'x'.repeat(LIMIT - 1000) }));
    expect((await postAlerts(under)).status).toBe(202);
  });

  it('405 for other methods, 404 elsewhere, and other routes still served', async () => {
    const get = await fetch(`${base}/alerts/alertmanager`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect((await fetch(`${base}/alerts/alertmanager`, { method: 'PUT', body: '{}' })).status).toBe(405);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect(await (await fetch(`${base}/healthz`)).text()).toBe('ok\n');
  });

  it('503 with the fix when no token is configured', async () => {
    const res = await post(
      '/alerts/alertmanager',
      JSON.stringify(alertPayload()),
      amHeaders,
      `http://127.0.0.1:${disabled.port}`,
    );
    expect(res.status).toBe(503);
    expect(res.json.error).toBe('alert endpoint disabled: set OKOME_ALERTMANAGER_TOKEN');
  });

  it('503 (retry later) when the seen-event store fails; nothing handed over', async () => {
    storeBroken = true;
    const res = await postAlerts(alertPayload());
    expect(res.status).toBe(503);
    await settle();
    expect(received.alerts).toEqual([]);
    expect(received.logs.some((l) => l.msg === 'recording the alerts failed: answered 503')).toBe(true);
  });

  it('a throwing callback is logged, never surfaced', async () => {
    throwInCallback = true;
    expect((await postAlerts(alertPayload())).status).toBe(202);
    await settle();
    expect(received.logs.some((l) => l.msg === 'alertmanager callback failed')).toBe(true);
    throwInCallback = false;
    expect((await postAlerts(alertPayload({}, { fingerprint: 'bbbb' }))).status).toBe(202);
  });
});

describe('POST /hooks/keepalived', () => {
  const postHook = (body: string, headers: Record<string, string>) =>
    post('/hooks/keepalived', body, headers);

  it('accepts a signed event with 202 and hands it over after the response', async () => {
    const res = await postHook(HOOK_BODY, signedHook(HOOK_BODY));
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ accepted: 1, duplicates: 0 });
    await settle();
    expect(received.hooks).toEqual([
      expect.objectContaining({ node: 'pi-b', instance: 'VI_1', state: 'MASTER' }),
    ]);
    expect(received.deferredAfterEnd).toEqual([true]);
  });

  it('401 for unsigned, wrongly signed, tampered and stale requests; a replay is a duplicate; nothing handed over', async () => {
    const headers = signedHook(HOOK_BODY);
    expect((await postHook(HOOK_BODY, { 'content-type': 'application/json' })).status).toBe(401);
    expect(
      (await postHook(HOOK_BODY, { ...headers, [SIGNATURE_HEADER]: `v1=${'0'.repeat(64)}` })).status,
    ).toBe(401);
    expect((await postHook(HOOK_BODY.replace('MASTER', 'BACKUP'), headers)).status).toBe(401);
    const old = Math.floor(Date.now() / 1000) - 301;
    expect((await postHook(HOOK_BODY, signedHook(HOOK_BODY, old))).json.error).toMatch(/window/);
    expect((await postHook(HOOK_BODY, headers)).status).toBe(202);
    // The same request again (another replica's copy, or a replay): 202 as a duplicate, not handed over.
    const replay = await postHook(HOOK_BODY, headers);
    expect(replay.status).toBe(202);
    expect(replay.json).toEqual({ accepted: 0, duplicates: 1 });
    await settle();
    expect(received.hooks).toHaveLength(1);
  });

  it('400 for signed non-JSON, 422 for a signed wrong shape, 415 and 413 before verification', async () => {
    expect((await postHook('nope', signedHook('nope'))).status).toBe(400);
    const bad = JSON.stringify({ node: 'pi-b', instance: 'VI_1', state: 'SLEEPING' });
    const res = await postHook(bad, signedHook(bad));
    expect(res.status).toBe(422);
    expect(res.json.problems).toEqual(['state: must be MASTER, BACKUP, FAULT or STOP']);
    expect(
      (await postHook(HOOK_BODY, { ...signedHook(HOOK_BODY), 'content-type': 'text/plain' })).status,
    ).toBe(415);
    const big = 'x'.repeat(LIMIT + 1);
    expect((await postHook(big, signedHook(big))).status).toBe(413);
    expect(await streamBody('/hooks/keepalived', 3 * LIMIT, signedHook(''))).toBe(413);
    expect(seen.size).toBe(0);
  });

  it('a rejecting callback is logged, never surfaced', async () => {
    throwInCallback = true;
    expect((await postHook(HOOK_BODY, signedHook(HOOK_BODY))).status).toBe(202);
    await settle();
    expect(received.logs.some((l) => l.msg === 'keepalived callback failed')).toBe(true);
  });

  it('uses the injected clock for the window', async () => {
    clockSkewMs = 10 * 60_000;
    expect((await postHook(HOOK_BODY, signedHook(HOOK_BODY))).status).toBe(401);
  });

  it('503 with the fix when no secret is configured; 405 for GET', async () => {
    const res = await post(
      '/hooks/keepalived',
      HOOK_BODY,
      signedHook(HOOK_BODY),
      `http://127.0.0.1:${disabled.port}`,
    );
    expect(res.status).toBe(503);
    expect(res.json.error).toBe('keepalived hook disabled: set OKOME_KEEPALIVED_SECRET or per-node secrets');
    expect((await fetch(`${base}/hooks/keepalived`)).status).toBe(405);
  });
});

describe('dedupe with the real SQLite store', () => {
  it('marks a batch all or none: a failure midway leaves nothing marked, the retry delivers all', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'okome-alerts-'));
    const store = openSqliteStore({ path: join(dir, 'okome.db') });
    let failOnCall = 2;
    let calls = 0;
    const delivered: number[] = [];
    const sqlite = await startHttpServer({
      port: 0,
      host: '127.0.0.1',
      routes: [
        createAlertmanagerRoute({
          token: TOKEN,
          maxBodyBytes: LIMIT,
          markSeen: async (key, now) => {
            calls += 1;
            if (calls === failOnCall) throw new Error('disk I/O error');
            return store.markSeen(key, now);
          },
          atomically: (fn) => store.atomically(fn),
          onAlerts: (batch) => {
            delivered.push(batch.alerts.length);
          },
        }),
      ],
    });
    try {
      const two = alertPayload({}, {});
      two.alerts.push(...alertPayload({}, { fingerprint: 'bbbb' }).alerts);
      const origin = `http://127.0.0.1:${sqlite.port}`;
      const body = JSON.stringify(two);
      expect((await post('/alerts/alertmanager', body, amHeaders, origin)).status).toBe(503);
      failOnCall = 0;
      expect((await post('/alerts/alertmanager', body, amHeaders, origin)).json).toEqual({
        accepted: 2,
        duplicates: 0,
      });
      expect((await post('/alerts/alertmanager', body, amHeaders, origin)).json).toEqual({
        accepted: 0,
        duplicates: 2,
      });
      await settle();
      expect(delivered).toEqual([2, 0]);
    } finally {
      await sqlite.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
