// Sends a slow chunked upload (two parts, PAUSE_MS apart) and prints the upstream's answer
// from /api/echo, which says how spread out the body arrived there. Runs inside okl-bot.
// usage: node upload-probe.mjs URL [PAUSE_MS]
import { request } from 'node:http';

const url = process.argv[2] ?? 'http://10.86.0.18/api/echo';
const pauseMs = Number(process.argv[3] ?? '800');
const req = request(
  url,
  { method: 'POST', headers: { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' } },
  (res) => {
    let text = '';
    res.on('data', (chunk) => {
      text += chunk;
    });
    res.on('end', () =>
      process.stdout.write(`${JSON.stringify({ status: res.statusCode, body: text.trim() })}\n`),
    );
  },
);
req.on('error', (error) => {
  process.stdout.write(`${JSON.stringify({ error: String(error) })}\n`);
  process.exitCode = 1;
});
req.flushHeaders();
req.write('first part of the planner request\n');
setTimeout(() => req.end('second part\n'), pauseMs);
