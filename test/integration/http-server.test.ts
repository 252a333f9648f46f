import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type HttpLimits, type HttpRoute, startHttpServer } from '../../src/http/http-server.js';
import { attack, requestHead } from '../support/http-attacker.js';
import { waitFor } from '../support/slack-emulator/index.js';

/** The bounded server on its own: routes, body limits, the in-flight budget, the connection caps. */

let closeServer: (() => Promise<void>) | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await closeServer?.();
  closeServer = undefined;
});

interface Seen {
  bodies: Buffer[];
  screened: number;
}

async function serve(limits: Partial<HttpLimits>, extra: readonly HttpRoute[] = []) {
  const seen: Seen = { bodies: [], screened: 0 };
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    limits,
    routes: [
      {
        path: '/echo',
        method: 'POST',
        maxBodyBytes: 48 * 1024,
        screen: (req) => {
          seen.screened += 1;
          return req.headers['x-deny'] === undefined ? undefined : { status: 401, body: { error: 'denied' } };
        },
        handle: (_req, res, body) => {
          seen.bodies.push(body);
          res.writeHead(200).end(String(body.length));
        },
      },
      { path: '/healthz', method: 'GET', maxBodyBytes: 0, handle: (_req, res) => res.end('ok') },
      ...extra,
    ],
  });
  closeServer = () => server.close();
  return { server, seen, url: (path: string) => `http://127.0.0.1:${server.port}${path}` };
}

/** A connection from `from` that has sent `head` and holds on. */
function hold(port: number, from: string, head = ''): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from }, () => {
      if (head !== '') s.write(head);
      resolve(s);
    });
    s.on('error', () => {});
    sockets.push(s);
  });
}

describe('startHttpServer', () => {
  it('hands the whole body to the route; 404 and 405 (with Allow) elsewhere', async () => {
    const { url, seen } = await serve({});
    const r = await fetch(url('/echo'), { method: 'POST', body: 'x'.repeat(1000) });
    expect(await r.text()).toBe('1000');
    expect(seen.bodies.map((b) => b.length)).toEqual([1000]);
    expect((await fetch(url('/nope'))).status).toBe(404);
    const get = await fetch(url('/echo'));
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });

  it("413 for a body past the route's limit, declared or streamed, and the route never sees it", async () => {
    const { server, seen } = await serve({});
    const declared = await attack({
      port: server.port,
      from: '127.0.0.1',
      giveUpMs: 5000,
      send: (s) => s.write(requestHead('POST', '/echo', { 'content-length': 49 * 1024 + 1 })),
    });
    expect(declared.status).toBe(413);
    const streamed = await attack({
      port: server.port,
      from: '127.0.0.1',
      giveUpMs: 5000,
      send: (s) => {
        s.write(requestHead('POST', '/echo', { 'transfer-encoding': 'chunked' }));
        const chunk = Buffer.alloc(60 * 1024, 0x61);
        s.write(`${chunk.length.toString(16)}\r\n`);
        s.write(chunk);
      },
    });
    expect(streamed.status).toBe(413);
    expect(seen.bodies).toEqual([]);
    expect(server.inFlightBodyBytes()).toBe(0);
  });

  it('a screen refusal answers before the body is read', async () => {
    const { server, seen } = await serve({});
    // Declares a body it never sends: only an answer from the headers can arrive.
    const socket = await hold(
      server.port,
      '127.0.0.1',
      requestHead('POST', '/echo', { 'content-length': 40_000, 'x-deny': '1' }),
    );
    const answer = await new Promise<string>((resolve) =>
      socket.once('data', (d: Buffer) => resolve(d.toString())),
    );
    const denied = { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]) };
    expect(denied.status).toBe(401);
    expect(seen.screened).toBe(1);
    expect(seen.bodies).toEqual([]);
  });

  it('503 (retry later) once the bodies in flight would pass the budget; the budget comes back', async () => {
    const { server, url } = await serve({ maxInFlightBodyBytes: 64 * 1024 });
    // Holds 40 KB of budget: declared, never finished.
    const holder = await hold(
      server.port,
      '127.0.0.1',
      requestHead('POST', '/echo', { 'content-length': 40_000 }),
    );
    await waitFor(() => server.inFlightBodyBytes() === 40_000, 5000, 'the first body taking its share');
    const second = await fetch(url('/echo'), { method: 'POST', body: 'y'.repeat(40_000) });
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('1');
    holder.destroy();
    await waitFor(() => server.inFlightBodyBytes() === 0, 5000, 'the budget given back');
    const third = await fetch(url('/echo'), { method: 'POST', body: 'y'.repeat(40_000) });
    expect(third.status).toBe(200);
    expect(server.inFlightBodyBytes()).toBe(0);
  });

  it('closes connections past the per-address cap as they arrive; other addresses are still served', async () => {
    const { server, url } = await serve({ maxConnectionsPerAddress: 4 });
    for (let i = 0; i < 4; i += 1) await hold(server.port, '127.0.0.2');
    const fifth = await attack({ port: server.port, from: '127.0.0.2', giveUpMs: 5000, send: () => {} });
    expect(fifth).toMatchObject({ status: undefined, abandoned: false });
    expect((await fetch(url('/healthz'))).status).toBe(200);
  });

  it('closes connections past the overall cap', async () => {
    const { server } = await serve({ maxConnections: 3 });
    for (let i = 0; i < 3; i += 1) await hold(server.port, `127.0.0.${10 + i}`);
    const fourth = await attack({ port: server.port, from: '127.0.0.20', giveUpMs: 5000, send: () => {} });
    expect(fourth).toMatchObject({ status: undefined, abandoned: false });
  });
});
