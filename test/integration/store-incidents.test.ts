import { spawn } from 'node:child_process';
import { beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isOkomeError } from '../../src/errors.js';
import type { Store } from '../../src/store/store-port.js';
import { describeStoreContract } from '../support/store-kinds.js';

describeStoreContract('store', ({ current, store: opened, reopen }) => {
  let store: Store;
  beforeEach(() => {
    store = opened();
  });

  const input = (key: string, now = 1000) => ({
    key,
    number: key.split(':')[0] ?? '?',
    title: 'nginx down on pi-a',
    channel: 'C0INCIDENT',
    requester: 'U0ALICE',
    now,
  });

  describe('incidents', () => {
    it('opens one incident per key and reuses it while open', async () => {
      const first = await store.openOrReuseIncident(input('1:pi-a'));
      const again = await store.openOrReuseIncident(input('1:pi-a', 2000));
      const other = await store.openOrReuseIncident(input('2:pi-b'));
      expect(first.how).toBe('created');
      expect(again).toEqual({ incident: first.incident, how: 'reused' });
      expect(other.how).toBe('created');
      expect(first.incident).toMatchObject({
        key: '1:pi-a',
        number: '1',
        status: 'open',
        channel: 'C0INCIDENT',
        requester: 'U0ALICE',
        openedAt: 1000,
        resolvedAt: null,
        rootRef: null,
        lastReport: null,
      });
      expect((await store.openIncidents()).map((i) => i.key)).toEqual(['1:pi-a', '2:pi-b']);
    });

    it('resolves once (compare-and-set), after which the key opens a new incident', async () => {
      const { incident } = await store.openOrReuseIncident(input('3:vip'));
      expect(await store.resolveIncident(incident.id, 5000, 'checks healthy again')).toBe(true);
      expect(await store.resolveIncident(incident.id, 6000, 'redelivered')).toBe(false);
      expect(await store.incidentById(incident.id)).toMatchObject({
        status: 'resolved',
        resolvedAt: 5000,
        resolvedReason: 'checks healthy again',
      });
      expect(await store.openIncidents()).toEqual([]);
      const next = await store.openOrReuseIncident(input('3:vip', 7000));
      expect(next.how).toBe('created');
      expect(next.incident.id).not.toBe(incident.id);
      expect((await store.incidentByKey('3:vip'))?.id).toBe(next.incident.id);
      await store.resolveIncident(next.incident.id, 8000, 'fixed');
      expect((await store.incidentByKey('3:vip'))?.id).toBe(next.incident.id);
      expect(await store.incidentByKey('nope')).toBeUndefined();
    });

    it('finds the latest incident with a runbook number, the open one first', async () => {
      expect(await store.latestIncidentWithNumber('2')).toBeUndefined();
      const old = await store.openOrReuseIncident(input('2:pi-a', 1000));
      await store.resolveIncident(old.incident.id, 1500, 'healthy');
      const open = await store.openOrReuseIncident(input('2:pi-b', 2000));
      const later = await store.openOrReuseIncident(input('2:pi-c', 3000));
      await store.resolveIncident(later.incident.id, 3500, 'healthy');
      expect((await store.latestIncidentWithNumber('2'))?.id).toBe(open.incident.id);
      await store.resolveIncident(open.incident.id, 4000, 'healthy');
      expect((await store.latestIncidentWithNumber('2'))?.id).toBe(later.incident.id);
      expect(await store.latestIncidentWithNumber('5b')).toBeUndefined();
    });

    it('reopens the latest incident of a key when asked (flapping), once, keeping its id and thread', async () => {
      const { incident } = await store.openOrReuseIncident(input('2:pi-b'));
      await store.setIncidentRootRef(
        incident.id,
        await store.createMessage({ channel: 'C0INCIDENT', threadRef: null, now: 1 }),
      );
      expect(await store.resolveIncident(incident.id, 5000, 'healthy')).toBe(true);
      const seen: number[] = [];
      const again = await store.openOrReuseIncident(input('2:pi-b', 6000), (latest) => {
        seen.push(latest.resolvedAt ?? -1);
        return true;
      });
      expect(seen).toEqual([5000]);
      expect(again.how).toBe('reopened');
      expect(again.incident).toMatchObject({
        id: incident.id,
        status: 'open',
        resolvedAt: null,
        resolvedReason: null,
        reopenedCount: 1,
        rootRef: (await store.incidentById(incident.id))?.rootRef,
      });
      // Open again: reused, the predicate is not even asked.
      expect((await store.openOrReuseIncident(input('2:pi-b', 7000), () => true)).how).toBe('reused');
      await store.resolveIncident(incident.id, 8000, 'healthy');
      const fresh = await store.openOrReuseIncident(input('2:pi-b', 9000), () => false);
      expect(fresh.how).toBe('created');
      expect(fresh.incident.id).not.toBe(incident.id);
    });

    it('records the first acknowledgement of an open incident only', async () => {
      const { incident } = await store.openOrReuseIncident(input('5'));
      expect(await store.acknowledgeIncident(incident.id, 'U0ALICE', 2000)).toBe(true);
      expect(await store.acknowledgeIncident(incident.id, 'U0BOB', 3000)).toBe(false);
      expect(await store.incidentById(incident.id)).toMatchObject({
        acknowledgedBy: 'U0ALICE',
        acknowledgedAt: 2000,
      });
      const other = (await store.openOrReuseIncident(input('6'))).incident;
      await store.resolveIncident(other.id, 4000, 'done');
      expect(await store.acknowledgeIncident(other.id, 'U0ALICE', 5000)).toBe(false);
    });

    it('the database itself refuses a second open incident for a key', async () => {
      await store.openOrReuseIncident(input('1:pi-a'));
      await expect(
        current().raw(
          "INSERT INTO incidents (key, number, title, status, channel, requester, opened_at) VALUES ('1:pi-a', '1', 't', 'open', 'C', 'bot', 1)",
        ),
      ).rejects.toThrow(/UNIQUE constraint failed|duplicate key value violates unique constraint/);
    });

    it('saves the last report and the root message ref', async () => {
      const { incident } = await store.openOrReuseIncident(input('6:pi-b'));
      const report = { checks: [{ id: 'redis-ping', status: 'fail' }], ratios: [0.9, 0.4] };
      await store.saveReport(incident.id, report);
      const ref = await store.createMessage({ channel: 'C0INCIDENT', threadRef: null, now: 1 });
      await store.setIncidentRootRef(incident.id, ref);
      expect(await store.incidentById(incident.id)).toMatchObject({ lastReport: report, rootRef: ref });
      await expect(store.setIncidentRootRef(incident.id, 'm-unknown')).rejects.toThrow(
        /FOREIGN KEY|foreign key constraint/,
      );
      await expect(store.saveReport(999, {})).rejects.toThrow(/incident 999 not found/);
    });

    it('commits an incident with its root post atomically, or not at all', async () => {
      await expect(
        store.atomically(async () => {
          await store.openOrReuseIncident(input('7:pi-a'));
          await store.createMessage({ channel: 'C0INCIDENT', threadRef: null, now: 1 });
          throw new Error('renderer blew up');
        }),
      ).rejects.toThrow('renderer blew up');
      expect(await store.openIncidents()).toEqual([]);
    });

    it('is race-free across processes: concurrent openers of a key get one incident', async () => {
      const startAt = Date.now() + 700; // lets every process load before they race
      const script = `
        ${current().childOpen}
        while (Date.now() < ${startAt}) {}
        const ids = {};
        for (let i = 0; i < 200; i++) {
          const key = 'k' + (i % 10);
          const { incident } = await store.openOrReuseIncident({ key, number: '1', title: 't', channel: 'C', requester: 'bot', now: i });
          (ids[key] ??= new Set()).add(incident.id);
        }
        await store.close();
        process.stdout.write(JSON.stringify(Object.fromEntries(Object.entries(ids).map(([k, v]) => [k, [...v]]))));
      `;
      const run = (): Promise<Record<string, number[]>> =>
        new Promise((done, fail) => {
          const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let out = '';
          let err = '';
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
          });
          child.stderr.on('data', (d: Buffer) => {
            err += d.toString();
          });
          child.on('close', (code) =>
            code === 0 ? done(JSON.parse(out)) : fail(new Error(`exit ${code}: ${err}`)),
          );
        });
      const results = await Promise.all([run(), run(), run(), run()]);
      const byKey = new Map<string, Set<number>>();
      for (const result of results) {
        for (const [key, ids] of Object.entries(result)) {
          for (const id of ids) byKey.set(key, (byKey.get(key) ?? new Set()).add(id));
        }
      }
      expect(byKey.size).toBe(10);
      for (const ids of byKey.values()) expect(ids.size).toBe(1);
      expect(await store.openIncidents()).toHaveLength(10);
    });
  });

  describe('timeline', () => {
    it('appends entries with their data and reads them back oldest first', async () => {
      const { incident } = await store.openOrReuseIncident(input('1:pi-a'));
      await store.appendTimeline({
        incidentId: incident.id,
        at: 3000,
        kind: 'approval',
        text: 'U2 approved restart-nginx',
      });
      await store.appendTimeline({
        incidentId: incident.id,
        at: 1000,
        kind: 'diagnosis',
        text: 'nginx inactive on pi-a',
        data: { failing: ['nginx-active'] },
      });
      await store.appendTimeline({
        incidentId: incident.id,
        at: 3000,
        kind: 'command',
        text: 'systemctl restart nginx',
      });
      const entries = await store.timeline(incident.id);
      expect(entries.map((e) => [e.at, e.kind])).toEqual([
        [1000, 'diagnosis'],
        [3000, 'approval'],
        [3000, 'command'],
      ]);
      expect(entries[0]?.data).toEqual({ failing: ['nginx-active'] });
      expect(entries[1]?.data).toBeNull();
    });

    it('refuses an entry for an unknown incident with a store error', async () => {
      let caught: unknown;
      try {
        await store.appendTimeline({ incidentId: 404, at: 1, kind: 'note', text: 'x' });
      } catch (error) {
        caught = error;
      }
      expect(isOkomeError(caught, ErrorCode.StoreFailed)).toBe(true);
      expect((caught as Error).message).toMatch(
        /cannot append to the timeline: .*(FOREIGN KEY|foreign key constraint)/,
      );
    });
  });

  describe('seen events', () => {
    it('says true only the first time a key is seen, across reopen', async () => {
      expect(await store.markSeen('envelope:abc', 1000)).toBe(true);
      expect(await store.markSeen('envelope:abc', 1001)).toBe(false);
      expect(await store.markSeen('alert:g1:fp1:firing:2026-01-01T00:00:00Z', 1002)).toBe(true);
      store = await reopen();
      expect(await store.markSeen('envelope:abc', 5000)).toBe(false);
    });

    it('prunes keys older than the cutoff, which may then be seen again', async () => {
      const hour = 3_600_000;
      await store.markSeen('old', 0);
      await store.markSeen('new', 24 * hour);
      expect(await store.pruneSeen(25 * hour - 24 * hour)).toBe(1);
      expect(await store.markSeen('old', 25 * hour)).toBe(true);
      expect(await store.markSeen('new', 25 * hour)).toBe(false);
    });
  });

  describe('async transactions', () => {
    /** Resolves when `release` is called: holds a transaction open across an await. */
    const latch = () => {
      let release = (): void => {};
      const opened = new Promise<void>((resolve) => {
        release = resolve;
      });
      return { opened, release };
    };

    it('another caller’s write waits for an open transaction, and is not rolled back with it', async () => {
      const hold = latch();
      const wrote = latch();
      const order: string[] = [];
      const failing = store.atomically(async () => {
        await store.openOrReuseIncident(input('1:pi-a'));
        order.push('tx wrote');
        wrote.release();
        await hold.opened;
        throw new Error('renderer blew up');
      });
      await wrote.opened;
      // Started while the transaction is open: it must neither land inside it nor be lost.
      const outside = store.openOrReuseIncident(input('2:pi-b')).then(() => order.push('outside wrote'));
      // Round trips to the database on a connection of their own: time for the outside write
      // to land, were it not held back.
      for (let i = 0; i < 3; i += 1) await current().raw('SELECT 1');
      expect(order).toEqual(['tx wrote']);
      hold.release();
      await expect(failing).rejects.toThrow('renderer blew up');
      await outside;
      expect(order).toEqual(['tx wrote', 'outside wrote']);
      expect((await store.openIncidents()).map((i) => i.key)).toEqual(['2:pi-b']);
    });

    it('transactions run one after another, each seeing the other’s committed writes', async () => {
      const opened: string[] = [];
      await Promise.all(
        ['1:pi-a', '2:pi-b', '3:pi-a'].map((key) =>
          store.atomically(async () => {
            const before = (await store.openIncidents()).length;
            await new Promise((r) => setImmediate(r));
            await store.openOrReuseIncident(input(key));
            opened.push(`${key}@${before}`);
          }),
        ),
      );
      // Whichever order they ran in, each saw all the ones before it (none saw the same count).
      expect(opened.map((o) => o.split('@')[1]).sort()).toEqual(['0', '1', '2']);
      expect(opened.map((o) => o.split('@')[0]).sort()).toEqual(['1:pi-a', '2:pi-b', '3:pi-a']);
    });

    it('a nested transaction is a savepoint: its failure undoes only its own writes', async () => {
      await store.atomically(async () => {
        await store.openOrReuseIncident(input('1:pi-a'));
        await expect(
          store.atomically(async () => {
            await store.openOrReuseIncident(input('2:pi-b'));
            throw new Error('inner');
          }),
        ).rejects.toThrow('inner');
      });
      expect((await store.openIncidents()).map((i) => i.key)).toEqual(['1:pi-a']);
    });

    it('close waits for an open transaction to commit', async () => {
      const hold = latch();
      const tx = store.atomically(async () => {
        await hold.opened;
        await store.openOrReuseIncident(input('1:pi-a'));
      });
      const closed = store.close();
      hold.release();
      await tx;
      await closed;
      const [row] = await current().raw('SELECT count(*) AS n FROM incidents');
      expect(Number(row?.n)).toBe(1);
    });
  });
});
