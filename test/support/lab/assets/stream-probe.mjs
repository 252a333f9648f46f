// Fetches a URL and reports when each body chunk arrived (ms after the request started), so a
// test can tell an unbuffered stream (chunks spread out) from a buffered one (all at the end).
// Runs inside okl-bot. usage: node stream-probe.mjs URL
import { request } from 'node:http';

const url = process.argv[2] ?? 'http://10.86.0.18/api/stream';
const started = performance.now();
const req = request(url, (res) => {
  const chunks = [];
  res.on('data', (chunk) =>
    chunks.push({ atMs: Math.round(performance.now() - started), bytes: chunk.length }),
  );
  res.on('end', () => {
    process.stdout.write(
      `${JSON.stringify({ status: res.statusCode, headers: res.headers, chunks, totalMs: Math.round(performance.now() - started) })}\n`,
    );
  });
});
req.on('error', (error) => {
  process.stdout.write(`${JSON.stringify({ error: String(error) })}\n`);
  process.exitCode = 1;
});
req.setTimeout(15000, () => req.destroy(new Error('timeout')));
req.end();
