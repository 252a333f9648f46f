// Measures SSH costs with ssh2 (the bot's client) from inside okl-bot: new connection
// (handshake + auth, host key pinned), warm execs on one connection, and parallel execs.
// usage: node ssh-bench.mjs HOST USER KEY_PATH FINGERPRINT [ROUNDS] [nodelay|nagle]
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import ssh2 from 'ssh2';

const [host, username, keyPath, fingerprint, roundsText = '20', noDelayText = 'nodelay'] =
  process.argv.slice(2);
// Without TCP_NODELAY each small exec reply waits on Nagle + delayed ACK (≈ 40 ms on Linux).
const noDelay = noDelayText === 'nodelay';
const rounds = Number(roundsText);
const privateKey = readFileSync(keyPath);

function connect() {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    const started = performance.now();
    client.on('ready', () => resolve({ client, ms: performance.now() - started }));
    client.on('error', reject);
    const sock = tcpConnect({ host, port: 22, noDelay });
    client.connect({
      sock,
      username,
      privateKey,
      readyTimeout: 5000,
      hostVerifier: (key) =>
        `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}` === fingerprint,
    });
  });
}

function exec(client, command) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    client.exec(command, (error, stream) => {
      if (error) return reject(error);
      let stdout = '';
      stream.on('data', (d) => {
        stdout += d;
      });
      stream.stderr.on('data', () => undefined);
      stream.on('close', (code) => resolve({ code, stdout, ms: performance.now() - started }));
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};
const round1 = (x) => Math.round(x * 10) / 10;

const connects = [];
for (let i = 0; i < 5; i += 1) {
  const { client, ms } = await connect();
  connects.push(ms);
  client.end();
}
const { client } = await connect();
await exec(client, 'true');
const warmTrue = [];
for (let i = 0; i < rounds; i += 1) warmTrue.push((await exec(client, 'true')).ms);
const warmActive = [];
let lastActive = '';
for (let i = 0; i < rounds; i += 1) {
  const r = await exec(client, 'systemctl is-active nginx');
  warmActive.push(r.ms);
  lastActive = r.stdout.trim();
}
const parallelCommands = [
  'systemctl is-active nginx',
  'systemctl is-active keepalived',
  'ip -o addr show',
  'df -P /',
  'cat /proc/meminfo',
  'test -e /etc/okome/CHAOS_ENABLE && echo present || echo absent',
  'tail -n 500 /var/log/nginx/okome_access.log',
  'journalctl -u keepalived --since "10 minutes ago" --no-pager',
  'ip -o link show',
];
const parallelStarted = performance.now();
const parallel = await Promise.all(parallelCommands.map((c) => exec(client, c)));
const parallelMs = performance.now() - parallelStarted;
client.end();
process.stdout.write(
  `${JSON.stringify({
    noDelay,
    connectMedianMs: round1(median(connects)),
    connectMs: connects.map(round1),
    warmTrueMedianMs: round1(median(warmTrue)),
    warmIsActiveMedianMs: round1(median(warmActive)),
    isActive: lastActive,
    parallel9Ms: round1(parallelMs),
    parallelCodes: parallel.map((r) => r.code),
  })}\n`,
);
