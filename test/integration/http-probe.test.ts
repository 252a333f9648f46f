import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { errors } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type OkomeError } from '../../src/errors.js';
import { describeHttpError, UndiciHttpProbe } from '../../src/probes/http-probe.js';
import { freePort } from '../support/launchers/free-port.js';
import { type NginxServer, startNginx } from '../support/launchers/nginx.js';
import { stopAllLaunched } from '../support/launchers/process-utils.js';
import { waitFor } from '../support/slack-emulator/wait-for.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const routes: Record<string, Handler> = {
  '/echo': (req, res) => {
    res.setHeader('X-Multi', ['a', 'b']);
    res.setHeader('X-Mixed-Case', 'yes');
    res.end(JSON.stringify({ canary: req.headers['x-okome-canary'] ?? null }));
  },
  '/big': (_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end('x'.repeat(1024 * 1024));
  },
  '/never': () => {
    // Never answers: the probe's deadline must end the request.
  },
  '/stall-body': (_req, res) => {
    res.writeHead(200);
    res.write('partial');
  },
  '/slow-200': (_req, res) => {
    setTimeout(() => res.end('late'), 150);
  },
};

let nginx: NginxServer;
let origin: Server;
let originUrl: string;
const sockets = new Set<Socket>();
let connections = 0;

beforeAll(async () => {
  origin = createHttpServer((req, res) => {
    const handler = routes[new URL(req.url ?? '/', 'http://x').pathname];
    if (handler === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    handler(req, res);
  });
  origin.on('connection', (socket) => {
    connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const address = origin.address();
  originUrl = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  nginx = await startNginx();
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => origin.close(resolve));
  await stopAllLaunched();
});

async function rejection(promise: Promise<unknown>): Promise<OkomeError> {
  try {
    await promise;
  } catch (error) {
    return error as OkomeError;
  }
  throw new Error('expected a rejection');
}

describe('UndiciHttpProbe', () => {
  it('reads status, lower-cased headers and latency from a real nginx edge: MISS then HIT', async () => {
    const probe = new UndiciHttpProbe();
    try {
      const path = `/cached/item-${Date.now()}`;
      const first = await probe.request({
        url: nginx.url(path),
        method: 'GET',
        timeoutMs: 2000,
        maxBodyBytes: 1000,
      });
      const second = await probe.request({
        url: nginx.url(path),
        method: 'GET',
        timeoutMs: 2000,
        maxBodyBytes: 1000,
      });
      expect(first.status).toBe(200);
      expect(first.headers['x-cache-status']).toBe('MISS');
      expect(second.headers['x-cache-status']).toBe('HIT');
      expect(second.headers['x-okome-node']).toBe('test-edge');
      expect(second.body).toBe(`origin /origin/${path.slice('/cached/'.length)}\n`);
      expect(second.latencyMs).toBeGreaterThan(0);
      expect(second.latencyMs).toBeLessThan(2000);
      const head = await probe.request({ url: nginx.url('/'), method: 'HEAD', timeoutMs: 2000 });
      expect(head).toMatchObject({ status: 200, body: '' });
      expect(head.headers['x-okome-node']).toBe('test-edge');
    } finally {
      await probe.close();
    }
  });

  it('sends the request headers, joins multi-value headers, lower-cases names', async () => {
    const probe = new UndiciHttpProbe();
    try {
      const res = await probe.request({
        url: `${originUrl}/echo`,
        method: 'GET',
        headers: { 'X-OKOME-Canary': 'debug' },
        timeoutMs: 2000,
        maxBodyBytes: 1000,
      });
      expect(JSON.parse(res.body)).toEqual({ canary: 'debug' });
      expect(res.headers['x-multi']).toBe('a, b');
      expect(res.headers['x-mixed-case']).toBe('yes');
      expect(Object.keys(res.headers).every((k) => k === k.toLowerCase())).toBe(true);
    } finally {
      await probe.close();
    }
  });

  it('keeps at most maxBodyBytes of the body, discards it for 0, and frees the socket for the next request', async () => {
    const probe = new UndiciHttpProbe();
    try {
      const capped = await probe.request({
        url: `${originUrl}/big`,
        method: 'GET',
        timeoutMs: 2000,
        maxBodyBytes: 100,
      });
      expect(capped.body).toBe('x'.repeat(100));
      const none = await probe.request({ url: `${originUrl}/big`, method: 'GET', timeoutMs: 2000 });
      expect(none.body).toBe('');
      const many = await Promise.all(
        Array.from({ length: 30 }, () =>
          probe.request({ url: `${originUrl}/big`, method: 'GET', timeoutMs: 3000, maxBodyBytes: 10 }),
        ),
      );
      expect(many.every((r) => r.status === 200 && r.body === 'xxxxxxxxxx')).toBe(true);
      // Too much left to drain: those sockets were destroyed, none is held open.
      const deadline = Date.now() + 2000;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(sockets.size).toBe(0);
      // A small remainder is drained and the socket reused: ten requests, one connection.
      const before = connections;
      let completed = 0;
      const onComplete = (message: unknown): void => {
        if ((message as { request: { path: string } }).request.path === '/echo') completed += 1;
      };
      subscribe('undici:request:trailers', onComplete);
      try {
        for (let i = 0; i < 10; i++) {
          const r = await probe.request({
            url: `${originUrl}/echo`,
            method: 'GET',
            timeoutMs: 2000,
            maxBodyBytes: 2,
          });
          expect(r.body).toBe('{"');
          // As after the gap between two checks: the background drain has completed the response
          // (undici's own event), and undici frees the socket one immediate later, before ours.
          await waitFor(() => completed === i + 1, 2000, `response ${i + 1} complete`);
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        unsubscribe('undici:request:trailers', onComplete);
      }
      expect(connections - before).toBe(1);
    } finally {
      await probe.close();
    }
  });

  it('times out a server that never answers, within the deadline, as OKOME_PROBE_TIMEOUT', async () => {
    const probe = new UndiciHttpProbe();
    try {
      const started = performance.now();
      const error = await rejection(
        probe.request({ url: `${originUrl}/never`, method: 'GET', timeoutMs: 300 }),
      );
      const elapsed = performance.now() - started;
      expect(error.code).toBe(ErrorCode.ProbeTimeout);
      expect(error.message).toMatch(/timeout after 300 ms|no response headers within 300 ms/);
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(800);
      const stalled = await rejection(
        probe.request({ url: `${originUrl}/stall-body`, method: 'GET', timeoutMs: 300, maxBodyBytes: 1000 }),
      );
      expect(stalled.code).toBe(ErrorCode.ProbeTimeout);
      // A slow but in-time answer is not an error.
      const slow = await probe.request({
        url: `${originUrl}/slow-200`,
        method: 'GET',
        timeoutMs: 2000,
        maxBodyBytes: 10,
      });
      expect(slow.body).toBe('late');
      expect(slow.latencyMs).toBeGreaterThanOrEqual(140);
    } finally {
      await probe.close();
    }
  });

  it('reports a closed port as OKOME_PROBE_FAILED "connection refused", at once', async () => {
    const probe = new UndiciHttpProbe();
    try {
      const port = await freePort();
      const started = performance.now();
      const error = await rejection(
        probe.request({ url: `http://127.0.0.1:${port}/`, method: 'HEAD', timeoutMs: 2000 }),
      );
      expect(error.code).toBe(ErrorCode.ProbeFailed);
      expect(error.message).toBe(`HEAD http://127.0.0.1:${port}/: connection refused`);
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await probe.close();
    }
  });

  it('reports a server that drops the connection, and garbage instead of HTTP, as OKOME_PROBE_FAILED', async () => {
    const dropper = createTcpServer((socket) => {
      socket.once('data', () => socket.destroy());
    });
    const garbage = createTcpServer((socket) => {
      socket.once('data', () => socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n'));
    });
    await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    const portOf = (s: typeof dropper): number => {
      const a = s.address();
      return typeof a === 'object' && a !== null ? a.port : 0;
    };
    const probe = new UndiciHttpProbe();
    try {
      const dropped = await rejection(
        probe.request({ url: `http://127.0.0.1:${portOf(dropper)}/`, method: 'GET', timeoutMs: 2000 }),
      );
      expect(dropped.code).toBe(ErrorCode.ProbeFailed);
      expect(dropped.message).toMatch(/connection closed by the server|connection reset/);
      const bad = await rejection(
        probe.request({ url: `http://127.0.0.1:${portOf(garbage)}/`, method: 'GET', timeoutMs: 2000 }),
      );
      expect(bad.code).toBe(ErrorCode.ProbeFailed);
      expect(bad.message).toContain('invalid HTTP response');
      const notUrl = await rejection(probe.request({ url: 'not a url', method: 'GET', timeoutMs: 2000 }));
      expect(notUrl.code).toBe(ErrorCode.ProbeFailed);
    } finally {
      await probe.close();
      await new Promise((resolve) => dropper.close(resolve));
      await new Promise((resolve) => garbage.close(resolve));
    }
  });

  it('maps undici and socket error codes to short reasons', () => {
    expect(describeHttpError(new errors.ConnectTimeoutError(), 2000)).toEqual({
      timeout: true,
      reason: 'connect timeout',
    });
    expect(describeHttpError(new errors.HeadersTimeoutError(), 2000)).toEqual({
      timeout: true,
      reason: 'no response headers within 2000 ms',
    });
    expect(describeHttpError(new DOMException('x', 'TimeoutError'), 2000)).toEqual({
      timeout: true,
      reason: 'timeout after 2000 ms',
    });
    const unreachable = Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' });
    expect(describeHttpError(unreachable, 2000)).toEqual({ timeout: false, reason: 'host unreachable' });
    expect(describeHttpError(new TypeError('fetch failed', { cause: unreachable }), 2000).reason).toBe(
      'host unreachable',
    );
    expect(describeHttpError(new AggregateError([unreachable]), 2000).reason).toBe('host unreachable');
  });
});
