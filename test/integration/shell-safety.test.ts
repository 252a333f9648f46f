import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MONITOR_COMMAND } from '../../src/alerts/vip-address-monitor.js';
import type { RunningApp } from '../../src/app.js';
import { commandPurposes } from '../../src/config/schema.js';
import { buildBatchScript } from '../../src/diagnostics/batch-protocol.js';
import { type LoopbackConfig, loopbackConfig, startInProcessBot } from '../support/bot-harness.js';
import { stopAllLaunched } from '../support/launchers/process-utils.js';
import { type SshdServer, startSshd } from '../support/launchers/sshd.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * No Slack text ever reaches a shell: a real sshd whose ForceCommand records every command it
 * is sent, hostile slash text, button values, action ids and user names from Slack, and then the
 * record must hold only commands of the configuration and no marker file may appear.
 */

let sshd: SshdServer;
let emu: SlackEmulator;
let app: RunningApp;
let cfg: LoopbackConfig;
let dir: string;
const MARKER = '/tmp/okome-pwned-marker';

/**
 * The commands a sent string runs: itself, or for a batch script the commands of its jobs,
 * once the script is shown to be exactly the batch template around them (nothing else in it).
 */
function unbatch(sent: string, maxOutputBytes: number): string[] {
  const delimiter = /^D=(okome[0-9a-f]+)\n/.exec(sent)?.[1];
  if (delimiter === undefined) return [sent];
  // Jobs follow their group's `timeout` line; rebuilt in id order below.
  const commands: { id: number; command: string; timeoutMs: number }[] = [];
  let seconds = Number.NaN;
  for (const line of sent.split('\n')) {
    const group = /^\{ timeout ([\d.]+) sh -s /.exec(line);
    if (group !== null) seconds = Number(group[1]);
    const job = /^j (\d+) (.*) &$/.exec(line);
    if (job === null) continue;
    const body = job[2] ?? '';
    const quoted = /^"\$\{SHELL:-sh\}" -c '(.*)'$/.exec(body)?.[1];
    commands.push({
      id: Number(job[1]),
      command: quoted === undefined ? body : quoted.replaceAll(`'\\''`, "'"),
      timeoutMs: seconds * 1000,
    });
  }
  commands.sort((a, b) => a.id - b.id);
  expect(sent).toBe(buildBatchScript(commands, delimiter, maxOutputBytes));
  return commands.map((c) => c.command);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'okome-shell-safety-'));
  chmodSync(dir, 0o777);
  const log = join(dir, 'commands.log');
  writeFileSync(log, '', { mode: 0o666 });
  chmodSync(log, 0o666);
  const recorder = join(dir, 'record');
  writeFileSync(recorder, `#!/bin/sh\nprintf '%s\\0' "$SSH_ORIGINAL_COMMAND" >> ${log}\nexit 0\n`, {
    mode: 0o755,
  });
  chmodSync(recorder, 0o755);
  sshd = await startSshd({ extraConfig: `ForceCommand ${recorder}\n` });
  emu = await startSlackEmulator();
  cfg = await loopbackConfig((doc) => {
    const nodes = doc.nodes as Array<Record<string, unknown> & { ssh: Record<string, unknown> }>;
    for (const n of nodes) {
      n.address = sshd.host;
      n.ssh.port = sshd.port;
      n.ssh.user = sshd.user;
      n.ssh.privateKeyPath = sshd.clientKeyPath;
      n.ssh.hostKey = sshd.hostKeyFingerprint;
    }
  });
  app = await startInProcessBot(cfg.config, emu);
}, 60_000);

afterAll(async () => {
  await app?.stop({ graceMs: 1000 });
  await emu?.close();
  await stopAllLaunched();
  cfg?.cleanup();
  rmSync(dir, { recursive: true, force: true });
  rmSync(MARKER, { force: true });
});

const hostile = [
  `status; touch ${MARKER}`,
  `check $(touch ${MARKER})`,
  `check \`touch ${MARKER}\``,
  `incident 1 && touch ${MARKER}`,
  `validate | touch ${MARKER}`,
  `check pi-a'; touch ${MARKER}; echo '`,
];

describe('shell safety', () => {
  it('hostile slash text, button values, action ids and user names reach no command', async () => {
    emu.setUser('U0EVIL', { name: `$(touch ${MARKER})`, realName: `\`touch ${MARKER}\`` });
    for (const text of hostile) {
      const { payload } = await emu.slash({ userId: 'U0EVIL', channelId: 'C0OPS', text }).ack;
      expect(JSON.stringify(payload)).toMatch(/Unknown|takes|too long|Try one of/);
    }
    // A real status runs the configured diagnostics over SSH; its cards carry real buttons.
    await emu.slash({ userId: 'U0EVIL', channelId: 'C0OPS', text: 'status' }).ack;
    await emu.waitFor(() => emu.messagesIn('C0OPS').find((m) => m.text.startsWith('OKOME status')), 20_000);
    // A message Slack never showed: these payloads are forged, as an attacker would craft them.
    const anyTs = '9999999999.000001';
    for (const [actionId, value] of [
      [`okome:approve:$(touch ${MARKER})`, `$(touch ${MARKER})`],
      ['okome:approve:ap_AAAAAAAAAAAAAAAAAAAA', `ap_AAAAAAAAAAAAAAAAAAAA; touch ${MARKER}`],
      [`okome:reject:ap_A\`touch ${MARKER}\``, 'x'],
    ] as const) {
      await emu.click({ userId: 'U0EVIL', channelId: 'C0OPS', messageTs: anyTs, actionId, value }).ack;
    }
    // Each forged click answered as not ours: the bot has judged all three before we read the record.
    await emu.waitFor(
      () => emu.responses.filter((r) => r.body.text === 'That button is not one of mine.').length === 3,
      10_000,
      'three forged clicks refused',
    );
    const sent = readFileSync(join(dir, 'commands.log'), 'utf8')
      .split('\0')
      .filter((l) => l !== '')
      .flatMap((c) => unbatch(c, cfg.config.timeouts.maxOutputBytes));
    expect(sent.length, JSON.stringify(emu.messagesIn('C0OPS').map((m) => m.text))).toBeGreaterThan(5);
    const allowed = new Set<string>();
    for (const node of cfg.config.nodes) {
      for (const p of commandPurposes) {
        const template = node.command[p];
        if (template.includes('{service}'))
          for (const s of node.services) allowed.add(template.replaceAll('{service}', s));
        else allowed.add(template);
      }
    }
    // The VIP watcher's address stream: a fixed command, no configuration or input in it.
    allowed.add(MONITOR_COMMAND);
    for (const command of sent) expect(allowed.has(command), command).toBe(true);
    expect(sent.join('\n')).not.toContain(MARKER);
    expect(existsSync(MARKER)).toBe(false);
  });
});
