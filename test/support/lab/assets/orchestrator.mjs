// The lab's orchestrator ("OKOME", .25:8000): the upstream of both edge caches. Plain JS so it
// starts in ~40 ms without a compiler. It runs inside okl-orch; its mode is switched at run time
// through a Unix socket in the lab work dir (a file path is not network-namespaced, so the test
// process in the root namespace reaches it without a route into the lab).
//
// Modes: healthy | down (nothing listens on :8000) | 503 (every path answers 503) |
// slow (every answer waits delayMs first).
//
// usage: node orchestrator.mjs HOST PORT CONTROL_SOCKET

import { rmSync } from 'node:fs';
import { createServer } from 'node:http';

const [host = '10.86.0.25', portText = '8000', controlPath = '/tmp/okome-orch.sock'] = process.argv.slice(2);
const port = Number(portText);
const state = { mode: 'healthy', delayMs: 1500, served: 0, byPath: {} };
const sockets = new Set();

function send(res, status, headers, body, head) {
  res.writeHead(status, {
    'content-length': Buffer.byteLength(body),
    'x-orchestrator': 'okome-lab',
    ...headers,
  });
  res.end(head ? undefined : body);
}

function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://orch');
  const path = url.pathname;
  const head = req.method === 'HEAD';
  state.served += 1;
  state.byPath[path] = (state.byPath[path] ?? 0) + 1;
  if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') {
    return send(res, 405, { allow: 'GET, HEAD, POST' }, 'method not allowed\n', head);
  }
  if (state.mode === '503') {
    return send(
      res,
      503,
      { 'content-type': 'application/json', 'cache-control': 'no-store' },
      '{"status":"unavailable"}\n',
      head,
    );
  }
  if (path === '/health') {
    return send(
      res,
      200,
      { 'content-type': 'application/json', 'cache-control': 'no-store' },
      '{"status":"ok"}\n',
      head,
    );
  }
  if (path === '/') {
    return send(
      res,
      200,
      { 'content-type': 'text/html', 'cache-control': 'public, max-age=30' },
      '<!doctype html><title>OKOME</title><div id="app">OKOME UI</div>\n',
      head,
    );
  }
  if (path.startsWith('/ui-schema/')) {
    const body = JSON.stringify({
      schema: path.slice('/ui-schema/'.length),
      generatedAt: new Date().toISOString(),
    });
    return send(
      res,
      200,
      { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' },
      `${body}\n`,
      head,
    );
  }
  if (path === '/api/planner') {
    const body = JSON.stringify({ plan: ['fetch', 'rank', 'answer'], at: Date.now() });
    return send(
      res,
      200,
      { 'content-type': 'application/json', 'cache-control': 'no-store' },
      `${body}\n`,
      head,
    );
  }
  if (path === '/api/echo' && req.method === 'POST') {
    // Tells a client how long the request body took to arrive here: with
    // proxy_request_buffering off the edge forwards a slow upload as it comes (≈ the client's
    // pauses); with buffering on it sends the whole body at once (≈ 0 ms).
    const headersAt = performance.now();
    let bytes = 0;
    req.on('data', (chunk) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      const body = JSON.stringify({
        bodyBytes: bytes,
        headersToEndMs: Math.round(performance.now() - headersAt),
      });
      send(res, 200, { 'content-type': 'application/json', 'cache-control': 'no-store' }, `${body}\n`, false);
    });
    return undefined;
  }
  if (path === '/api/stream') {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'x-orchestrator': 'okome-lab',
    });
    if (head) return res.end();
    let n = 0;
    const timer = setInterval(() => {
      n += 1;
      res.write(`data: {"chunk":${n},"at":${Date.now()}}\n\n`);
      if (n === 5) {
        clearInterval(timer);
        res.end();
      }
    }, 200);
    res.on('close', () => clearInterval(timer));
    return undefined;
  }
  return send(res, 404, { 'content-type': 'text/plain', 'cache-control': 'no-store' }, 'not found\n', head);
}

const server = createServer((req, res) => {
  if (state.mode === 'slow') setTimeout(() => handle(req, res), state.delayMs);
  else handle(req, res);
});
server.keepAliveTimeout = 5000;
server.on('connection', (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
});

function listen() {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function unlisten() {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    // "down" means nothing answers: drop the edge caches' keepalive connections as well.
    for (const socket of sockets) socket.destroy();
  });
}

async function setMode(mode, delayMs) {
  if (!['healthy', 'down', '503', 'slow'].includes(mode)) throw new Error(`unknown mode ${mode}`);
  if (typeof delayMs === 'number' && delayMs >= 0) state.delayMs = delayMs;
  if (mode === 'down') await unlisten();
  else if (!server.listening) await listen();
  state.mode = mode;
}

const control = createServer((req, res) => {
  let text = '';
  req.on('data', (chunk) => {
    text += chunk;
  });
  req.on('end', async () => {
    try {
      if (req.method === 'PUT' && req.url === '/mode') {
        const body = JSON.parse(text || '{}');
        await setMode(String(body.mode), body.delayMs);
      } else if (req.method === 'POST' && req.url === '/reset-stats') {
        state.served = 0;
        state.byPath = {};
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          mode: state.mode,
          delayMs: state.delayMs,
          served: state.served,
          byPath: state.byPath,
          listening: server.listening,
        }),
      );
    } catch (error) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(String(error));
    }
  });
});

rmSync(controlPath, { force: true });
await listen();
control.listen(controlPath, () => {
  process.stdout.write(`orchestrator listening on ${host}:${port}, control ${controlPath}\n`);
});
const stop = () => {
  control.close();
  server.close();
  for (const socket of sockets) socket.destroy();
  rmSync(controlPath, { force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
