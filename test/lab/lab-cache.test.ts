import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { FaultHandle } from '../support/lab/faults.js';
import { DEFAULT_BUDGET_COUNTS, STREAMING_DIRECTIVES } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { labRequest } from '../support/lab/lab-http.js';
import { ASSETS_DIR } from '../support/lab/templates.js';
import { describeLab } from '../support/lab/vitest-lab.js';

const VIP = 'http://10.86.0.18';
const ORCH = 'http://10.86.0.25:8000';

function uniquePath(name: string): string {
  return `/ui-schema/${name}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

function redisStats(info: string): { hits: number; misses: number } {
  const field = (name: string) =>
    Number(/^(\w+):(\d+)/m.exec(info.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[2] ?? NaN);
  return { hits: field('keyspace_hits'), misses: field('keyspace_misses') };
}

describeLab('lab edge cache, orchestrator and redis', () => {
  let lab: Lab;
  let fault: FaultHandle | undefined;

  beforeAll(async () => {
    lab = await startLab();
  });
  afterEach(async () => {
    await fault?.revert();
    fault = undefined;
  });
  afterAll(async () => {
    await lab?.down();
  });

  it('answers on the VIP with X-OKOME-Node, MISS then HIT', async () => {
    const path = uniquePath('vip');
    const first = await labRequest(lab, `${VIP}${path}`);
    const second = await labRequest(lab, `${VIP}${path}`);
    expect(first.status).toBe(200);
    expect(first.headers['x-okome-node']).toBe('frontend-cache');
    expect(first.headers['x-cache-status']).toBe('MISS');
    expect(first.headers['x-upstream-status']).toBe('200');
    expect(first.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(second.headers['x-cache-status']).toBe('HIT');
    expect(second.headers['x-upstream-status']).toBeUndefined();
    const head = await labRequest(lab, `${VIP}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['x-okome-node']).toBe('frontend-cache');
  });

  it('bypasses the cache for X-OKOME-Canary: debug and labels canary answers', async () => {
    const path = uniquePath('canary');
    await labRequest(lab, `${VIP}${path}`);
    const debug = await labRequest(lab, `${VIP}${path}`, { headers: { 'X-OKOME-Canary': 'debug' } });
    expect(debug.headers['x-cache-status']).toBe('BYPASS');
    const canary = await labRequest(lab, `${VIP}${path}`, { headers: { 'X-OKOME-Canary': 'canary' } });
    expect(canary.headers['x-okome-canary']).toBe('canary-ttl-5m');
    const control = await labRequest(lab, `${VIP}${path}`);
    expect(control.headers['x-cache-status']).toBe('HIT');
    expect(control.headers['x-okome-canary']).toBeUndefined();
  });

  it('logs cache=… on every access-log line, proxies /health and never caches /api/', async () => {
    const path = uniquePath('log');
    await labRequest(lab, `${VIP}${path}`);
    await labRequest(lab, `${VIP}${path}`);
    const log = await lab.execOk('pi-a', ['tail', '-n', '50', '/var/log/nginx/okome_access.log']);
    const lines = log.split('\n').filter((l) => l.includes(path));
    expect(lines.map((l) => /cache=(\w+)/.exec(l)?.[1])).toEqual(['MISS', 'HIT']);
    const health = await labRequest(lab, `${VIP}/health`);
    expect(health.status).toBe(200);
    expect(health.body).toContain('"ok"');
    expect(health.headers['x-upstream-status']).toBe('200');
    for (let i = 0; i < 2; i += 1) {
      const planner = await labRequest(lab, `${VIP}/api/planner`);
      expect(planner.status).toBe(200);
      expect(planner.headers['x-cache-status']).toBeUndefined();
    }
    // The cold spare serves too, as itself.
    const spare = await labRequest(lab, `http://10.86.0.19${path}`);
    expect(spare.headers['x-okome-node']).toBe('backend-spare');
  });

  it('fault streaming-directives-removed: nginx -T loses them and a slow upload is buffered', async () => {
    const probe = join(ASSETS_DIR, 'upload-probe.mjs');
    const upload = async (): Promise<number> => {
      const out = (await lab.execOk('bot', [process.execPath, probe, `${VIP}/api/echo`, '800'])).trim();
      const answer = JSON.parse(out) as { status: number; body: string };
      expect(answer.status).toBe(200);
      return (JSON.parse(answer.body) as { headersToEndMs: number }).headersToEndMs;
    };
    const nginxT = async () => (await lab.ssh('pi-a', 'sudo nginx -T')).stdout;
    for (const directive of STREAMING_DIRECTIVES) expect(await nginxT()).toContain(directive);
    expect(await upload()).toBeGreaterThan(600);

    fault = await lab.fault('streaming-directives-removed', { node: 'pi-a' });
    const stripped = await nginxT();
    for (const directive of STREAMING_DIRECTIVES) expect(stripped).not.toContain(directive);
    expect(await upload()).toBeLessThan(200);
    const stream = await labRequest(lab, `${VIP}/api/stream`);
    expect(stream.body.match(/^data: /gm)).toHaveLength(5);

    await fault.revert();
    for (const directive of STREAMING_DIRECTIVES) expect(await nginxT()).toContain(directive);
    expect(await upload()).toBeGreaterThan(600);
  });

  it('streams /api/stream unbuffered through the VIP', async () => {
    const out = await lab.execOk('bot', [
      process.execPath,
      join(ASSETS_DIR, 'stream-probe.mjs'),
      `${VIP}/api/stream`,
    ]);
    const result = JSON.parse(out) as { status: number; chunks: Array<{ atMs: number }> };
    expect(result.status).toBe(200);
    const first = result.chunks[0]?.atMs ?? Number.POSITIVE_INFINITY;
    const last = result.chunks.at(-1)?.atMs ?? 0;
    expect(first).toBeLessThan(600);
    expect(last - first).toBeGreaterThan(500);
  });

  it('fault orchestrator-down: /api/ fails with 502, the UI is still served from cache', async () => {
    const path = uniquePath('stale');
    expect((await labRequest(lab, `${VIP}${path}`)).headers['x-cache-status']).toBe('MISS');
    fault = await lab.fault('orchestrator-down');
    const direct = await labRequest(lab, `${ORCH}/health`);
    expect(direct.status).toBe(0);
    expect(direct.curlExit).toBe(7);
    expect((await labRequest(lab, `${VIP}/api/planner`)).status).toBe(502);
    const ui = await labRequest(lab, `${VIP}${path}`);
    expect(ui.status).toBe(200);
    expect(['HIT', 'STALE', 'UPDATING']).toContain(ui.headers['x-cache-status']);
    expect((await labRequest(lab, `${VIP}/health`)).status).toBe(502);
    await fault.revert();
    expect((await labRequest(lab, `${ORCH}/health`)).status).toBe(200);
    expect((await labRequest(lab, `${VIP}/api/planner`)).status).toBe(200);
  });

  it('fault orchestrator-503: the orchestrator and /api/ answer 503, cached UI stays up', async () => {
    const path = uniquePath('503');
    await labRequest(lab, `${VIP}${path}`);
    fault = await lab.fault('orchestrator-503');
    expect((await labRequest(lab, `${ORCH}/health`)).status).toBe(503);
    const api = await labRequest(lab, `${VIP}/api/planner`);
    expect(api.status).toBe(503);
    expect(api.headers['x-upstream-status']).toBe('503');
    expect((await labRequest(lab, `${VIP}${path}`)).status).toBe(200);
    await fault.revert();
    expect((await labRequest(lab, `${ORCH}/health`)).status).toBe(200);
  });

  it('fault orchestrator-slow: answers take the configured delay', async () => {
    fault = await lab.fault('orchestrator-slow', { delayMs: 1200 });
    const slow = await labRequest(lab, `${ORCH}/health`);
    expect(slow.status).toBe(200);
    expect(slow.timeTotalMs).toBeGreaterThanOrEqual(1100);
    const viaVip = await labRequest(lab, `${VIP}/api/planner`);
    expect(viaVip.timeTotalMs).toBeGreaterThanOrEqual(1100);
    await fault.revert();
    expect((await labRequest(lab, `${ORCH}/health`)).timeTotalMs).toBeLessThan(500);
  });

  it('fault budget-runaway: okome:budget:rl counters at and over the limit, seen by redis-cli', async () => {
    fault = await lab.fault('budget-runaway');
    const window = Math.floor(Date.now() / 1000 / 60);
    const keys = (await lab.redis(['--scan', '--pattern', 'okome:budget:rl:*'])).stdout
      .trim()
      .split('\n')
      .sort();
    expect(keys).toEqual(
      Object.keys(DEFAULT_BUDGET_COUNTS)
        .map((agent) => `okome:budget:rl:${agent}:${window}`)
        .sort(),
    );
    expect((await lab.redis(['GET', `okome:budget:rl:planner-1:${window}`])).stdout.trim()).toBe('60');
    expect((await lab.redis(['GET', `okome:budget:rl:planner-2:${window}`])).stdout.trim()).toBe('75');
    const ttl = Number((await lab.redis(['TTL', `okome:budget:rl:planner-2:${window}`])).stdout.trim());
    expect(ttl).toBeGreaterThan(55);
    expect(ttl).toBeLessThanOrEqual(62);
    expect(fault.details.runaway).toEqual(['planner-1', 'planner-2']);
    await fault.revert();
    expect((await lab.redis(['--scan', '--pattern', 'okome:budget:rl:*'])).stdout.trim()).toBe('');
  });

  it('fault redis-miss-storm: the hit ratio seen in INFO stats drops, revert resets it', async () => {
    expect((await lab.redis(['PING'])).stdout.trim()).toBe('PONG');
    fault = await lab.fault('redis-miss-storm', { misses: 2000, hits: 100 });
    const stats = redisStats((await lab.redis(['INFO', 'stats'])).stdout);
    expect(stats.misses).toBeGreaterThanOrEqual(2000);
    expect(stats.hits / (stats.hits + stats.misses)).toBeLessThan(0.1);
    await fault.revert();
    const after = redisStats((await lab.redis(['INFO', 'stats'])).stdout);
    expect(after.misses).toBeLessThan(10);
  });
});
