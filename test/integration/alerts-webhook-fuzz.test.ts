import fc, { type JsonValue } from 'fast-check';
import { Pool } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  NODE_HEADER,
  SIGNATURE_HEADER,
  signHook,
  TIMESTAMP_HEADER,
} from '../../src/alerts/keepalived-hook.js';
import { createAlertmanagerRoute, createKeepalivedRoute } from '../../src/alerts/webhook-routes.js';
import { type HttpServerHandle, startHttpServer } from '../../src/http/http-server.js';
import { createLogger } from '../../src/logger.js';

/**
 * 10,000 fuzzed requests against the real handlers over real HTTP: random JSON, mutated valid
 * payloads, random bytes, oversized strings, wrong content types, methods and credentials.
 * The server must never crash and never answer 5xx: every answer is 2xx or 4xx.
 */

const TOKEN = 'fuzz-token-0123456789abcdef';
const SECRET = 'fuzz-secret-0123456789abcdef';
const LIMIT = 32 * 1024;
const RUNS = 100;
const PER_RUN = 100;

interface FuzzRequest {
  readonly path: string;
  readonly method: 'POST' | 'GET' | 'PUT' | 'DELETE' | 'PATCH';
  readonly headers: Record<string, string>;
  readonly body: string | Uint8Array;
}

let server: HttpServerHandle;
let pool: Pool;
const serverErrors: unknown[] = [];
const seen = new Set<string>();
let callbacks = 0;

beforeAll(async () => {
  const logger = createLogger({
    level: 'error',
    destination: { write: (line: string) => serverErrors.push(JSON.parse(line)) },
  });
  const common = {
    logger,
    markSeen: async (key: string) => !seen.has(key) && seen.add(key) !== undefined,
  };
  server = await startHttpServer({
    port: 0,
    host: '127.0.0.1',
    logger,
    limits: { lingerMs: 500 },
    routes: [
      createAlertmanagerRoute({
        ...common,
        maxBodyBytes: LIMIT,
        token: TOKEN,
        onAlerts: () => {
          callbacks += 1;
        },
      }),
      createKeepalivedRoute({
        ...common,
        secrets: { shared: SECRET, perNode: new Map() },
        knownNodes: new Set(['pi-a', 'pi-b']),
        replayWindowSec: 300,
        onKeepalived: () => {
          callbacks += 1;
        },
      }),
    ],
  });
  pool = new Pool(`http://127.0.0.1:${server.port}`, { connections: 16 });
});

afterAll(async () => {
  await pool?.close();
  await server?.close();
});

const hex = (size: { minLength?: number; maxLength: number }) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), ...size });
const labels = fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 24 }), { maxKeys: 5 });
const isoDate = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const alert = fc.record({
  status: fc.constantFrom('firing', 'resolved'),
  labels,
  annotations: labels,
  startsAt: isoDate,
  endsAt: fc.constantFrom('0001-01-01T00:00:00Z', '2024-05-01T03:20:00Z'),
  generatorURL: fc.webUrl(),
  fingerprint: hex({ minLength: 1, maxLength: 16 }),
});
const validPayload = fc.record({
  version: fc.constant('4'),
  groupKey: fc.string({ maxLength: 40 }),
  truncatedAlerts: fc.nat(5),
  status: fc.constantFrom('firing', 'resolved'),
  receiver: fc.string({ maxLength: 12 }),
  groupLabels: labels,
  commonLabels: labels,
  commonAnnotations: labels,
  externalURL: fc.webUrl(),
  alerts: fc.array(alert, { maxLength: 4 }),
});

type Json = JsonValue;

/** Every path into a JSON value (objects and arrays), root excluded. */
function paths(value: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (value === null || typeof value !== 'object') return [];
  const entries: Array<[string | number, Json | undefined]> = Array.isArray(value)
    ? value.map((v, i): [number, Json] => [i, v])
    : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...prefix, k], ...(v === undefined ? [] : paths(v, [...prefix, k]))]);
}

function mutate(root: Json, mutations: ReadonlyArray<readonly [number, Json | undefined]>): Json {
  const copy = structuredClone(root);
  for (const [pick, replacement] of mutations) {
    const all = paths(copy);
    const path = all[pick % Math.max(1, all.length)];
    if (path === undefined) continue;
    let parent: Json = copy;
    for (const key of path.slice(0, -1)) parent = (parent as Record<string | number, Json>)[key] as Json;
    const last = path[path.length - 1] as string | number;
    const container = parent as Record<string | number, Json>;
    if (replacement === undefined) delete container[last];
    else container[last] = replacement;
  }
  return copy;
}

const mutatedPayload = fc
  .tuple(
    validPayload,
    fc.array(fc.tuple(fc.nat(), fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined })), {
      maxLength: 3,
    }),
  )
  .map(([payload, mutations]) => JSON.stringify(mutate(payload as unknown as Json, mutations)));

const hugeString = fc
  .tuple(
    fc.integer({ min: LIMIT - 200, max: LIMIT * 3 }),
    fc.constantFrom('"', '{"version":"4","groupKey":"'),
  )
  .map(([n, prefix]) => `${prefix}${'x'.repeat(n)}"`);

const body = fc.oneof(
  { arbitrary: mutatedPayload, weight: 5 },
  { arbitrary: validPayload.map((p) => JSON.stringify(p)), weight: 1 },
  { arbitrary: fc.json({ maxDepth: 3 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 200 }), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 2048 }), weight: 1 },
  { arbitrary: hugeString, weight: 1 },
);

const contentType = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 8 },
  {
    arbitrary: fc.constantFrom(
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=utf-16',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      '',
    ),
    weight: 2,
  },
);

const method = fc.oneof(
  { arbitrary: fc.constant('POST' as const), weight: 9 },
  {
    arbitrary: fc.constantFrom('GET' as const, 'PUT' as const, 'DELETE' as const, 'PATCH' as const),
    weight: 1,
  },
);

const alertmanagerRequest = fc
  .record({
    method,
    ct: contentType,
    auth: fc.oneof(
      { arbitrary: fc.constant(`Bearer ${TOKEN}`), weight: 8 },
      { arbitrary: fc.constantFrom('', 'Bearer', `Basic ${TOKEN}`, `Bearer ${TOKEN}!`), weight: 1 },
      { arbitrary: fc.string({ maxLength: 40 }).filter((s) => /^[\t\x20-\x7e]*$/.test(s)), weight: 1 },
    ),
    body,
  })
  .map(({ method, ct, auth, body }): FuzzRequest => {
    const headers: Record<string, string> = {};
    if (ct !== '') headers['content-type'] = ct;
    if (auth !== '') headers.authorization = auth;
    return { path: '/alerts/alertmanager', method, headers, body };
  });

const hookBody = fc.oneof(
  fc
    .record({
      node: fc.oneof(fc.constantFrom('pi-a', 'pi-b'), fc.string({ maxLength: 70 })),
      instance: fc.oneof(fc.constant('VI_1'), fc.string({ maxLength: 70 })),
      state: fc.oneof(fc.constantFrom('MASTER', 'BACKUP', 'FAULT', 'STOP'), fc.string()),
      at: fc.option(isoDate, { nil: undefined }),
      priority: fc.option(fc.integer({ min: -10, max: 300 }), { nil: undefined }),
      nonce: hex({ maxLength: 16 }),
    })
    .map((b) => JSON.stringify(b)),
  fc.json({ maxDepth: 2 }),
  fc.string({ unit: 'binary', maxLength: 100 }),
  hugeString,
);

const keepalivedRequest = fc
  .record({
    method,
    ct: contentType,
    body: hookBody,
    node: fc.oneof(
      { arbitrary: fc.constantFrom('pi-a', 'pi-b'), weight: 6 },
      { arbitrary: fc.constantFrom('evil-node', '', 'pi a', 'x'.repeat(70)), weight: 1 },
    ),
    // valid, stale, future, garbage
    tsShift: fc.oneof(
      { arbitrary: fc.constant(0), weight: 6 },
      { arbitrary: fc.integer({ min: -100_000, max: 100_000 }), weight: 2 },
    ),
    sig: fc.oneof(
      { arbitrary: fc.constant('valid'), weight: 6 },
      {
        arbitrary: fc.constantFrom('', 'v2=', 'v2=zz', `v2=${'a'.repeat(64)}`, `v1=${'a'.repeat(64)}`),
        weight: 2,
      },
      { arbitrary: fc.string({ maxLength: 80 }).filter((s) => /^[\x20-\x7e]*$/.test(s)), weight: 1 },
    ),
    garbageTs: fc.option(
      fc.string({ maxLength: 20 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
      { nil: undefined },
    ),
  })
  .map(({ method, ct, body, node, tsShift, sig, garbageTs }): FuzzRequest => {
    const ts = garbageTs ?? String(Math.floor(Date.now() / 1000) + tsShift);
    const headers: Record<string, string> = {};
    if (ct !== '') headers['content-type'] = ct;
    headers[TIMESTAMP_HEADER] = ts;
    if (node !== '') headers[NODE_HEADER] = node;
    const signature = sig === 'valid' ? signHook(SECRET, ts, node, body) : sig;
    if (signature !== '') headers[SIGNATURE_HEADER] = signature;
    return { path: '/hooks/keepalived', method, headers, body };
  });

const fuzzRequest = fc.oneof(
  { arbitrary: alertmanagerRequest, weight: 7 },
  { arbitrary: keepalivedRequest, weight: 3 },
);

async function send(r: FuzzRequest): Promise<number | string> {
  try {
    const res = await pool.request({
      path: r.path,
      method: r.method,
      headers: r.headers,
      ...(r.method === 'GET' ? {} : { body: r.body }),
    });
    await res.body.dump();
    return res.statusCode;
  } catch (error) {
    return `client error: ${error instanceof Error ? error.message : String(error)}`;
  }
}

it('10,000 fuzzed webhook requests: no crash, every answer 2xx or 4xx', async () => {
  const statuses = new Map<number | string, number>();
  let total = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(fuzzRequest, { minLength: PER_RUN, maxLength: PER_RUN }), async (requests) => {
      const answers = await Promise.all(requests.map(send));
      answers.forEach((a, i) => {
        total += 1;
        statuses.set(a, (statuses.get(a) ?? 0) + 1);
        if (typeof a !== 'number' || a < 200 || a >= 500) {
          const r = requests[i];
          throw new Error(`answer ${a} for ${r?.method} ${r?.path} ${JSON.stringify(r?.headers)}`);
        }
      });
    }),
    { numRuns: RUNS },
  );
  expect(total).toBe(RUNS * PER_RUN);
  expect(serverErrors).toEqual([]);
  // The mix reaches every branch, including acceptance.
  for (const status of [202, 400, 401, 405, 413, 415, 422])
    expect(statuses.get(status) ?? 0).toBeGreaterThan(0);
  expect(callbacks).toBeGreaterThan(0);
  // The server still serves a plain request afterwards.
  expect(await send({ path: '/alerts/alertmanager', method: 'GET', headers: {}, body: '' })).toBe(405);
}, 60_000);
