import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isOkomeError } from '../../src/errors.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';

let dir: string;
let store: SqliteStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'okome-store-'));
  store = openSqliteStore({ path: join(dir, 'okome.db') });
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
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
  it('opens one incident per key and reuses it while open', () => {
    const first = store.openOrReuseIncident(input('1:pi-a'));
    const again = store.openOrReuseIncident(input('1:pi-a', 2000));
    const other = store.openOrReuseIncident(input('2:pi-b'));
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
    expect(store.openIncidents().map((i) => i.key)).toEqual(['1:pi-a', '2:pi-b']);
  });

  it('resolves once (compare-and-set), after which the key opens a new incident', () => {
    const { incident } = store.openOrReuseIncident(input('3:vip'));
    expect(store.resolveIncident(incident.id, 5000, 'checks healthy again')).toBe(true);
    expect(store.resolveIncident(incident.id, 6000, 'redelivered')).toBe(false);
    expect(store.incidentById(incident.id)).toMatchObject({
      status: 'resolved',
      resolvedAt: 5000,
      resolvedReason: 'checks healthy again',
    });
    expect(store.openIncidents()).toEqual([]);
    const next = store.openOrReuseIncident(input('3:vip', 7000));
    expect(next.how).toBe('created');
    expect(next.incident.id).not.toBe(incident.id);
    expect(store.incidentByKey('3:vip')?.id).toBe(next.incident.id);
    store.resolveIncident(next.incident.id, 8000, 'fixed');
    expect(store.incidentByKey('3:vip')?.id).toBe(next.incident.id);
    expect(store.incidentByKey('nope')).toBeUndefined();
  });

  it('reopens the latest incident of a key when asked (flapping), once, keeping its id and thread', () => {
    const { incident } = store.openOrReuseIncident(input('2:pi-b'));
    store.setIncidentRootRef(
      incident.id,
      store.createMessage({ channel: 'C0INCIDENT', threadRef: null, now: 1 }),
    );
    expect(store.resolveIncident(incident.id, 5000, 'healthy')).toBe(true);
    const seen: number[] = [];
    const again = store.openOrReuseIncident(input('2:pi-b', 6000), (latest) => {
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
      rootRef: store.incidentById(incident.id)?.rootRef,
    });
    // Open again: reused, the predicate is not even asked.
    expect(store.openOrReuseIncident(input('2:pi-b', 7000), () => true).how).toBe('reused');
    store.resolveIncident(incident.id, 8000, 'healthy');
    const fresh = store.openOrReuseIncident(input('2:pi-b', 9000), () => false);
    expect(fresh.how).toBe('created');
    expect(fresh.incident.id).not.toBe(incident.id);
  });

  it('records the first acknowledgement of an open incident only', () => {
    const { incident } = store.openOrReuseIncident(input('5'));
    expect(store.acknowledgeIncident(incident.id, 'U0ALICE', 2000)).toBe(true);
    expect(store.acknowledgeIncident(incident.id, 'U0BOB', 3000)).toBe(false);
    expect(store.incidentById(incident.id)).toMatchObject({
      acknowledgedBy: 'U0ALICE',
      acknowledgedAt: 2000,
    });
    const other = store.openOrReuseIncident(input('6')).incident;
    store.resolveIncident(other.id, 4000, 'done');
    expect(store.acknowledgeIncident(other.id, 'U0ALICE', 5000)).toBe(false);
  });

  it('the database itself refuses a second open incident for a key', () => {
    store.openOrReuseIncident(input('1:pi-a'));
    const db = new Database(join(dir, 'okome.db'));
    expect(() =>
      db
        .prepare(
          "INSERT INTO incidents (key, number, title, status, channel, requester, opened_at) VALUES ('1:pi-a', '1', 't', 'open', 'C', 'bot', 1)",
        )
        .run(),
    ).toThrow(/UNIQUE constraint failed/);
    db.close();
  });

  it('saves the last report and the root message ref', () => {
    const { incident } = store.openOrReuseIncident(input('6:pi-b'));
    const report = { checks: [{ id: 'redis-ping', status: 'fail' }], ratios: [0.9, 0.4] };
    store.saveReport(incident.id, report);
    const ref = store.createMessage({ channel: 'C0INCIDENT', threadRef: null, now: 1 });
    store.setIncidentRootRef(incident.id, ref);
    expect(store.incidentById(incident.id)).toMatchObject({ lastReport: report, rootRef: ref });
    expect(() => store.setIncidentRootRef(incident.id, 'm-unknown')).toThrow(/FOREIGN KEY/);
    expect(() => store.saveReport(999, {})).toThrow(/incident 999 not found/);
  });

  it('commits an incident with its root post atomically, or not at all', () => {
    expect(() =>
      store.atomically(() => {
        store.openOrReuseIncident(input('7:pi-a'));
        store.createMessage({ channel: 'C0INCIDENT', threadRef: null, now: 1 });
        throw new Error('renderer blew up');
      }),
    ).toThrow('renderer blew up');
    expect(store.openIncidents()).toEqual([]);
  });

  it('is race-free across processes: concurrent openers of a key get one incident', async () => {
    const path = join(dir, 'okome.db');
    const storeModule = resolve('src/store/sqlite-store.ts');
    const startAt = Date.now() + 700; // lets every process load before they race
    const script = `
      import { openSqliteStore } from ${JSON.stringify(storeModule)};
      const store = openSqliteStore({ path: ${JSON.stringify(path)} });
      while (Date.now() < ${startAt}) {}
      const ids = {};
      for (let i = 0; i < 200; i++) {
        const key = 'k' + (i % 10);
        const { incident } = store.openOrReuseIncident({ key, number: '1', title: 't', channel: 'C', requester: 'bot', now: i });
        (ids[key] ??= new Set()).add(incident.id);
      }
      store.close();
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
    expect(store.openIncidents()).toHaveLength(10);
  });
});

describe('timeline', () => {
  it('appends entries with their data and reads them back oldest first', () => {
    const { incident } = store.openOrReuseIncident(input('1:pi-a'));
    store.appendTimeline({
      incidentId: incident.id,
      at: 3000,
      kind: 'approval',
      text: 'U2 approved restart-nginx',
    });
    store.appendTimeline({
      incidentId: incident.id,
      at: 1000,
      kind: 'diagnosis',
      text: 'nginx inactive on pi-a',
      data: { failing: ['nginx-active'] },
    });
    store.appendTimeline({
      incidentId: incident.id,
      at: 3000,
      kind: 'command',
      text: 'systemctl restart nginx',
    });
    const entries = store.timeline(incident.id);
    expect(entries.map((e) => [e.at, e.kind])).toEqual([
      [1000, 'diagnosis'],
      [3000, 'approval'],
      [3000, 'command'],
    ]);
    expect(entries[0]?.data).toEqual({ failing: ['nginx-active'] });
    expect(entries[1]?.data).toBeNull();
  });

  it('refuses an entry for an unknown incident with a store error', () => {
    let caught: unknown;
    try {
      store.appendTimeline({ incidentId: 404, at: 1, kind: 'note', text: 'x' });
    } catch (error) {
      caught = error;
    }
    expect(isOkomeError(caught, ErrorCode.StoreFailed)).toBe(true);
    expect((caught as Error).message).toMatch(/cannot append to the timeline: FOREIGN KEY/);
  });
});

describe('seen events', () => {
  it('says true only the first time a key is seen, across reopen', () => {
    expect(store.markSeen('envelope:abc', 1000)).toBe(true);
    expect(store.markSeen('envelope:abc', 1001)).toBe(false);
    expect(store.markSeen('alert:g1:fp1:firing:2026-01-01T00:00:00Z', 1002)).toBe(true);
    store.close();
    store = openSqliteStore({ path: join(dir, 'okome.db') });
    expect(store.markSeen('envelope:abc', 5000)).toBe(false);
  });

  it('prunes keys older than the cutoff, which may then be seen again', () => {
    const hour = 3_600_000;
    store.markSeen('old', 0);
    store.markSeen('new', 24 * hour);
    expect(store.pruneSeen(25 * hour - 24 * hour)).toBe(1);
    expect(store.markSeen('old', 25 * hour)).toBe(true);
    expect(store.markSeen('new', 25 * hour)).toBe(false);
  });
});
