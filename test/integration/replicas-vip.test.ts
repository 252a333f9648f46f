import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import { type SshdServer, startSshd } from '../support/launchers/sshd.js';
import { queryOnce, type Replica, type ReplicaSet, startReplicaSet } from '../support/replicas.js';
import {
  type RecordedCall,
  type SlackEmulator,
  startSlackEmulator,
  waitFor,
} from '../support/slack-emulator/index.js';
import { scratchPostgresDatabase } from '../support/store-kinds.js';

/**
 * The VIP across replicas (issue 21): three real `okome serve` on one PostgreSQL, both Pis behind
 * a real sshd whose `ip -o addr show` (each node's vipOwnership command) the test rewrites to move
 * the VIP. The holder on record is in the store, so a move is announced once whoever tells of it:
 * the leader's watcher, a new leader's first look, or keepalived's hook reaching every replica
 * (the real contrib/keepalived-notify with their three URLs) while the leader is SIGKILLed.
 */

const SCRIPT = fileURLToPath(new URL('../../contrib/keepalived-notify', import.meta.url));
const SECRET = 'replicas-keepalived-secret-0123';
const db = await scratchPostgresDatabase('the replicas VIP test');

let sshd: SshdServer | undefined;
let stateDir = '';
let emu: SlackEmulator | undefined;
let set: ReplicaSet | undefined;

beforeAll(async () => {
  if (db === undefined) return;
  sshd = await startSshd();
  // Read by the sshd's login user (cat): world-readable, written by rename so never half-seen.
  stateDir = mkdtempSync(join(tmpdir(), 'okome-vip-'));
  chmodSync(stateDir, 0o755);
}, 60_000);
afterAll(async () => {
  await sshd?.stop();
  if (stateDir !== '') rmSync(stateDir, { recursive: true, force: true });
  await db?.drop();
});
afterEach(async () => {
  await set?.stop();
  await emu?.close();
  emu = set = undefined;
});

const VIP = '127.0.0.18';

/**
 * What `ip -o addr show` prints on each Pi: the VIP on `holder` only (none: on neither). Hidden:
 * the command fails on both (as when the bot cannot reach the Pis), so the watcher sees nothing.
 */
function holdVip(holder: 'pi-a' | 'pi-b' | 'none' | 'hidden'): void {
  for (const node of ['pi-a', 'pi-b']) {
    if (holder === 'hidden') {
      rmSync(join(stateDir, `${node}.ip`), { force: true });
      continue;
    }
    const lines = ['1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever'];
    if (node === holder)
      lines.push(
        `2: eth0    inet ${VIP}/32 scope global eth0\\       valid_lft forever preferred_lft forever`,
      );
    const tmp = join(stateDir, `${node}.ip.tmp`);
    writeFileSync(tmp, `${lines.join('\n')}\n`, { mode: 0o644 });
    renameSync(tmp, join(stateDir, `${node}.ip`));
  }
}

async function startReplicas(): Promise<{
  replicas: readonly Replica[];
  leader: Replica;
  emulator: SlackEmulator;
}> {
  if (db === undefined || sshd === undefined) throw new Error('no PostgreSQL or sshd');
  const server = sshd;
  // Each test starts on an empty schema: the previous test's rows and lease are not its own.
  await queryOnce(db.url, 'DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  // Migrated first, as by an operator's first start: replicas started at the same moment on an
  // unmigrated database may refuse each other (OKOME_STORE_UPGRADE_REFUSED), which is not what
  // this file tests.
  await (await openPostgresStore({ url: db.url })).close();
  holdVip('pi-a');
  const emulator = await startSlackEmulator();
  emu = emulator;
  set = await startReplicaSet({
    count: 3,
    databaseUrl: db.url,
    emu: emulator,
    env: { OKOME_KEEPALIVED_SECRET: SECRET },
    edit: (doc) => {
      // Polled only: the address stream would watch this machine's real addresses.
      (doc.alerts as Record<string, unknown>).vipWatch = { enabled: true, intervalMs: 500, stream: false };
      for (const node of doc.nodes as Array<Record<string, unknown> & { ssh: Record<string, unknown> }>) {
        node.address = server.host;
        node.ssh = {
          ...node.ssh,
          port: server.port,
          user: server.user,
          privateKeyPath: server.clientKeyPath,
          hostKey: server.hostKeyFingerprint,
        };
        node.commands = { vipOwnership: `cat ${join(stateDir, `${String(node.name)}.ip`)}` };
      }
    },
  });
  await set.serving();
  const { replica: leader } = await set.leader();
  const replicas = set.replicas;
  // The leader's watcher has taken its first look: pi-a holds the VIP.
  await waitFor(
    async () => {
      const h = await health(leader);
      return h?.vipWatch === 'watching' && h.vipHolder === 'pi-a' ? true : undefined;
    },
    30_000,
    "the leader's watcher seeing pi-a",
    100,
  );
  return { replicas, leader, emulator };
}

async function recordedHolder(url: string): Promise<string | undefined> {
  return (await queryOnce<{ holder: string }>(url, 'SELECT holder FROM vip_holder'))[0]?.holder;
}

/** The posts Slack took whose text contains `text`. */
function postsWith(emulator: SlackEmulator, text: string): RecordedCall[] {
  return emulator
    .callsTo('chat.postMessage')
    .filter((c) => c.response.ok === true && String(c.params.text ?? '').includes(text));
}

/** The notice (not the resolve message, which also says it). */
const BACK_ON_PI_A = ':large_green_circle: VIP back on pi-a';

/** The failover notices Slack took: "VIP moved from pi-a to pi-b". */
const moveNotices = (emulator: SlackEmulator) => postsWith(emulator, 'VIP moved from');

interface HealthZ {
  readonly role: string;
  readonly vipWatch: string;
  readonly vipHolder: string | null;
}

async function health(replica: Replica): Promise<HealthZ | undefined> {
  if (replica.child.exitCode !== null || replica.child.signalCode !== null) return undefined;
  return (await fetch(`${replica.baseUrl}/healthz`).catch(() => undefined))?.json() as
    | Promise<HealthZ>
    | undefined;
}

/** A replica that leads and whose watcher has taken its first look, seeing `holder`. */
async function newLeaderWatching(replicas: readonly Replica[], holder: string): Promise<Replica> {
  return waitFor(
    async () => {
      for (const r of replicas) {
        const h = await health(r);
        if (h?.role === 'leader' && h.vipWatch === 'watching' && h.vipHolder === holder) return r;
      }
      return undefined;
    },
    20_000,
    `a new leader watching ${holder}`,
    100,
  );
}

/** keepalived on pi-b saying `instance` became MASTER, to every URL (foreground, as by hand). */
function notifyScript(urls: readonly string[], instance = 'VI_1'): Promise<{ code: number; stderr: string }> {
  const env = join(stateDir, 'notify.env');
  writeFileSync(
    env,
    `OKOME_NOTIFY_URL="${urls.join(' ')}"\nOKOME_NOTIFY_SECRET=${SECRET}\nOKOME_NODE=pi-b\n`,
    { mode: 0o600 },
  );
  return new Promise((resolve) => {
    execFile(
      'sh',
      [SCRIPT, 'MASTER', instance],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          OKOME_NOTIFY_ENV: env,
          OKOME_NOTIFY_FOREGROUND: '1',
        },
      },
      (error, _out, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stderr }),
    );
  });
}

/** After the new leader's watcher took over, a few more of its polls (500 ms) say nothing more. */
const QUIET_MS = 3000;

describe.skipIf(db === undefined)('the VIP across three okome serve replicas', () => {
  it('a VIP move while the leader is being replaced is announced by the new leader, once', async () => {
    const { replicas, leader, emulator } = await startReplicas();
    expect(moveNotices(emulator)).toEqual([]);
    const killedAt = Date.now();
    await leader.kill();
    // The VIP moves while no replica watches: the old leader is dead, the next not yet elected.
    holdVip('pi-b');
    const others = replicas.filter((r) => r !== leader);
    const [notice] = await waitFor(
      () => (moveNotices(emulator).length > 0 ? moveNotices(emulator) : undefined),
      30_000,
      'the move announced',
      50,
    );
    console.info(
      `VIP move during a leader change: announced ${(notice?.time ?? 0) - killedAt} ms after SIGKILL`,
    );
    await newLeaderWatching(others, 'pi-b');
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    expect(moveNotices(emulator)).toHaveLength(1);
    expect(String(notice?.params.text)).toMatch(
      /VIP moved from \*pi-a\* to \*pi-b\*.*\(VIP watcher, first look\)/,
    );
    expect(await recordedHolder(db?.url ?? '')).toBe('pi-b');
  }, 150_000);

  it('SIGKILL of the leader during a failover, hooks reaching every replica: one failover notice, never two', async () => {
    const { replicas, leader, emulator } = await startReplicas();
    const urls = replicas.map((r) => `${r.baseUrl}/hooks/keepalived`);
    // All at once: the VIP moves, keepalived's notify posts to the three replicas, the leader dies.
    holdVip('pi-b');
    const notify = notifyScript(urls);
    const killedAt = Date.now();
    const killedPerf = performance.now();
    const killed = leader.kill();
    const sent = await notify;
    await killed;
    // At least one replica took it; the dead leader's URL may not have.
    expect(sent.code, sent.stderr).toBe(0);
    const [notice] = await waitFor(
      () => (moveNotices(emulator).length > 0 ? moveNotices(emulator) : undefined),
      30_000,
      'the failover announced',
      50,
    );
    const noticeMs = (notice?.time ?? 0) - killedAt;
    const others = replicas.filter((r) => r !== leader);
    const next = await newLeaderWatching(others, 'pi-b');
    const electedMs = Math.round((next.seen('elected leader') ?? 0) - killedPerf);
    console.info(
      `SIGKILL of the leader during a failover: the notice in Slack ${noticeMs} ms after the kill; a new leader elected after ${electedMs} ms`,
    );
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    expect(moveNotices(emulator)).toHaveLength(1);
    // On record once: one timeline entry for the move, in one failover incident.
    const moves = await queryOnce<{ text: string }>(
      db?.url ?? '',
      "SELECT text FROM timeline WHERE kind = 'notice' AND text LIKE 'VIP moved from%'",
    );
    expect(moves.map((m) => m.text)).toEqual([expect.stringMatching(/^VIP moved from pi-a to pi-b \(/)]);
  }, 150_000);

  it('no holder, then pi-b with its hook at every replica: one move notice, and the failover stays open (not taken for the VIP coming back)', async () => {
    const { replicas, emulator } = await startReplicas();
    holdVip('none');
    await waitFor(
      () => (postsWith(emulator, 'No node holds the VIP').length > 0 ? true : undefined),
      30_000,
      'the no-holder notice',
      50,
    );
    holdVip('pi-b');
    const sent = await notifyScript(replicas.map((r) => `${r.baseUrl}/hooks/keepalived`));
    expect(sent.code, sent.stderr).toBe(0);
    await waitFor(
      () => (moveNotices(emulator).length > 0 ? true : undefined),
      30_000,
      'the move announced',
      50,
    );
    // The leader's watcher then sees pi-b after no holder: the same move, already on record.
    await newLeaderWatching(replicas, 'pi-b');
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    expect(moveNotices(emulator)).toHaveLength(1);
    expect(postsWith(emulator, 'VIP back on')).toEqual([]);
    const failover = await queryOnce<{ status: string }>(
      db?.url ?? '',
      "SELECT status FROM incidents WHERE key LIKE 'failover:%'",
    );
    expect(failover).toEqual([{ status: 'open' }]);
  }, 150_000);

  it('the VIP back on pi-a unseen (no hook, the watcher blind meanwhile) is said by the watcher; the next failover is announced again', async () => {
    const { replicas, emulator } = await startReplicas();
    const urls = replicas.map((r) => `${r.baseUrl}/hooks/keepalived`);
    // pi-a cut off: the bot sees neither Pi; keepalived on pi-b says it took the VIP.
    holdVip('hidden');
    expect((await notifyScript(urls)).code).toBe(0);
    await waitFor(
      () => (moveNotices(emulator).length === 1 ? true : undefined),
      30_000,
      'the first move',
      50,
    );
    // pi-a comes back still MASTER (it never left it, so it sends no hook) and takes the VIP back.
    holdVip('pi-a');
    await waitFor(
      () => (postsWith(emulator, BACK_ON_PI_A).length > 0 ? true : undefined),
      30_000,
      'the watcher saying the VIP is back on pi-a',
      50,
    );
    // The next failover to pi-b is a new move, announced again.
    holdVip('pi-b');
    expect((await notifyScript(urls)).code).toBe(0);
    await waitFor(
      () => (moveNotices(emulator).length === 2 ? true : undefined),
      30_000,
      'the second move',
      50,
    );
    await newLeaderWatching(replicas, 'pi-b');
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    expect(moveNotices(emulator)).toHaveLength(2);
    expect(postsWith(emulator, BACK_ON_PI_A)).toHaveLength(1);
  }, 150_000);

  it("the watcher blind throughout: two instances' hooks of one failover give one notice; an instance becoming MASTER again is a new failover, from where the watcher last saw the VIP", async () => {
    const { replicas, emulator } = await startReplicas();
    const urls = replicas.map((r) => `${r.baseUrl}/hooks/keepalived`);
    holdVip('hidden');
    // One failover, told by each VRRP instance: one notice.
    expect((await notifyScript(urls, 'VI_1')).code).toBe(0);
    expect((await notifyScript(urls, 'VI_2')).code).toBe(0);
    await waitFor(() => (moveNotices(emulator).length > 0 ? true : undefined), 30_000, 'the move', 50);
    // pi-a returns still MASTER (no hook) and takes the VIP back, unseen; then VI_1 on pi-b
    // becomes MASTER again: it must have left MASTER in between, so this is a new failover.
    expect((await notifyScript(urls, 'VI_1')).code).toBe(0);
    await waitFor(
      () => (moveNotices(emulator).length === 2 ? true : undefined),
      30_000,
      'the second move',
      50,
    );
    expect(String(moveNotices(emulator)[1]?.params.text)).toMatch(
      /VIP moved from \*pi-a\* to \*pi-b\*.*\(keepalived\)/,
    );
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    expect(moveNotices(emulator)).toHaveLength(2);
  }, 150_000);
});
