import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { leaseRow, type ReplicaSet, startReplicaSet } from '../support/replicas.js';
import { type SlackEmulator, startSlackEmulator, waitFor } from '../support/slack-emulator/index.js';
import { scratchPostgresDatabase } from '../support/store-kinds.js';

/**
 * Replicas (issue 21 point 2), as operators run them: three `okome serve` on one PostgreSQL with
 * store.replicas. One is elected and runs the singletons; killed with SIGKILL (no goodbye, its
 * lease left to lapse) it is replaced within 5 s, by one replica, whose term is the next token.
 */

const db = await scratchPostgresDatabase('the replicas failover test');

let emu: SlackEmulator | undefined;
let set: ReplicaSet | undefined;
afterEach(async () => {
  await set?.stop();
  await emu?.close();
  emu = set = undefined;
});
afterAll(() => db?.drop());

describe.skipIf(db === undefined)('three okome serve replicas on one PostgreSQL', () => {
  it('elects one leader; a leader killed with SIGKILL is replaced within 5 s by exactly one replica', async () => {
    if (db === undefined) return;
    emu = await startSlackEmulator();
    set = await startReplicaSet({ count: 3, databaseUrl: db.url, emu });
    const replicas = set.replicas;
    await set.serving();
    const url = db.url;
    const first = await waitFor(() => leaseRow(url), 10_000, 'a leader', 50);
    const leader = replicas.find((r) => r.holds(first.holder));
    expect(leader, `the lease names ${first.holder}`).toBeDefined();
    if (leader === undefined) return;
    const others = replicas.filter((r) => r !== leader);
    // Only the leader started the singletons.
    expect(leader.seen('elected leader')).toBeDefined();
    expect(others.every((r) => r.seen('elected leader') === undefined)).toBe(true);

    const killedAt = performance.now();
    leader.child.kill('SIGKILL');
    const next = await waitFor(
      () => others.find((r) => r.seen('elected leader') !== undefined),
      10_000,
      'a new leader',
      20,
    );
    const failoverMs = (next.seen('elected leader') ?? 0) - killedAt;
    const after = await leaseRow(url);
    console.info(
      `leader failover after SIGKILL: ${Math.round(failoverMs)} ms (lease 3000 ms, campaign every 500 ms)`,
    );
    expect(failoverMs).toBeLessThan(5000);
    expect(next.holds(after?.holder ?? '')).toBe(true);
    expect(after?.token).toBe(first.token + 1);
    // Exactly one replica took over, and keeps it.
    await new Promise((r) => setTimeout(r, 1500));
    expect(others.filter((r) => r.seen('elected leader') !== undefined)).toEqual([next]);
    expect((await leaseRow(url))?.token).toBe(first.token + 1);
  }, 120_000);

  it('a replica killed with SIGKILL while sending: its claim lapses and another replica posts the message, once', async () => {
    if (db === undefined) return;
    const url = db.url;
    const admin = new pg.Client({ connectionString: url });
    admin.on('error', () => {});
    await admin.connect();
    try {
      // The previous test's rows and lease are not this test's: the replicas start on an empty schema.
      await admin.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
      emu = await startSlackEmulator();
      const leaseMs = 11_000;
      set = await startReplicaSet({
        count: 2,
        databaseUrl: url,
        emu,
        edit: (doc) => {
          doc.store = { kind: 'postgres', replicas: true, outboxLeaseMs: leaseMs };
        },
      });
      const replicas = set.replicas;
      await set.serving();
      // Slack takes the post but does not answer yet: the replica that claimed it is mid-delivery.
      const hold = emu.hold('chat.postMessage');
      await emu.slash({ userId: 'U0REQUEST', channelId: 'C0OPS', text: 'status' }).ack;
      const claim = await waitFor(
        async () => {
          const r = await admin.query<{ id: string; claimed_by: string; lease_until: string }>(
            "SELECT id, claimed_by, lease_until FROM outbox WHERE state = 'pending' AND claimed_by IS NOT NULL",
          );
          return hold.waiting() > 0 ? r.rows[0] : undefined;
        },
        30_000,
        'a post claimed and on the wire',
        50,
      );
      const holder = replicas.find((r) => r.holds(claim.claimed_by));
      const survivor = replicas.find((r) => r !== holder);
      if (holder === undefined || survivor === undefined)
        throw new Error(`no replica named ${claim.claimed_by}`);
      const killedAt = Date.now();
      await holder.kill();
      // The dead replica's call is dropped: Slack never got it.
      await waitFor(() => hold.waiting() === 0, 5000, 'the dead call dropped', 20);
      hold.release();
      const emulator = emu;
      const delivered = await waitFor(
        async () => {
          const r = await admin.query<{ state: string; claimed_by: string | null; attempts: number }>(
            'SELECT state, claimed_by, attempts FROM outbox WHERE id = $1',
            [claim.id],
          );
          return r.rows[0]?.state === 'sent' ? r.rows[0] : undefined;
        },
        leaseMs + 15_000,
        'the survivor to post it',
        100,
      );
      const tookMs = Date.now() - killedAt;
      console.info(
        `a dead replica's claimed post delivered by another ${tookMs} ms after SIGKILL (lease ${leaseMs} ms)`,
      );
      expect(delivered.attempts).toBe(2);
      expect(tookMs).toBeGreaterThanOrEqual(Number(claim.lease_until) - killedAt - 1000);
      // The rest of the status (its updates) follows through the survivor.
      await waitFor(
        async () => (await admin.query("SELECT 1 FROM outbox WHERE state <> 'sent'")).rowCount === 0,
        20_000,
        'the outbox drained',
        100,
      );
      const sent = await admin.query("SELECT 1 FROM outbox WHERE op = 'post'");
      const posts = emulator.callsTo('chat.postMessage').filter((c) => c.response.ok === true);
      expect(posts).toHaveLength(sent.rowCount ?? -1);
      expect(survivor.child.exitCode).toBe(null);
    } finally {
      await admin.end();
    }
  }, 120_000);
});
