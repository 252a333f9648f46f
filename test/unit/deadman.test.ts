import { describe, expect, it } from 'vitest';
import { DeadmanSwitch } from '../../src/alerts/deadman-switch.js';
import type { DeadmanNotice } from '../../src/domain/deadman.js';
import { ManualClock } from './outbox-fakes.js';

const TIMEOUT = 10 * 60_000;

function rig() {
  const clock = new ManualClock();
  const notices: DeadmanNotice[] = [];
  const errors: unknown[] = [];
  const sw = new DeadmanSwitch({
    timeoutMs: TIMEOUT,
    clock,
    notify: async (n) => {
      notices.push(n);
    },
    onError: (e) => errors.push(e),
  });
  return { clock, notices, errors, sw };
}

describe('dead-man switch (manual clock)', () => {
  it('Watchdog every few minutes: never a notice', async () => {
    const { clock, notices, sw } = rig();
    sw.start();
    for (let i = 0; i < 20; i++) {
      await clock.advance(4 * 60_000);
      sw.seen(clock.now());
    }
    await clock.advance(TIMEOUT - 1);
    expect(notices).toEqual([]);
    sw.stop();
  });

  it('missing → one "down" notice at the timeout, however long it stays missing; back → one "back"', async () => {
    const { clock, notices, sw } = rig();
    sw.start();
    await clock.advance(60_000);
    const last = clock.now();
    sw.seen(last);
    await clock.advance(TIMEOUT - 1);
    expect(notices).toEqual([]);
    await clock.advance(1);
    expect(notices).toEqual([{ kind: 'lost', lastSeen: last, at: last + TIMEOUT, timeoutMs: TIMEOUT }]);
    // Hours more of silence: no repeat.
    await clock.advance(6 * 3_600_000);
    expect(notices).toHaveLength(1);
    const back = clock.now();
    sw.seen(back);
    sw.seen(back + 1000);
    await clock.advance(TIMEOUT - 1);
    expect(notices).toEqual([
      { kind: 'lost', lastSeen: last, at: last + TIMEOUT, timeoutMs: TIMEOUT },
      { kind: 'back', at: back, downSince: last + TIMEOUT },
    ]);
    expect(sw.current()).toEqual({ kind: 'alive', lastSeen: back + 1000 });
  });

  it('never seen since the start: down after the timeout from the start; lost again after coming back', async () => {
    const { clock, notices, sw } = rig();
    const started = clock.now();
    sw.start();
    await clock.advance(TIMEOUT);
    expect(notices).toEqual([
      { kind: 'lost', lastSeen: undefined, at: started + TIMEOUT, timeoutMs: TIMEOUT },
    ]);
    sw.seen(clock.now());
    await clock.advance(TIMEOUT);
    expect(notices.map((n) => n.kind)).toEqual(['lost', 'back', 'lost']);
  });

  it('stopped: no timer fires and deliveries are ignored', async () => {
    const { clock, notices, sw } = rig();
    sw.start();
    sw.stop();
    await clock.advance(3 * TIMEOUT);
    sw.seen(clock.now());
    expect(notices).toEqual([]);
  });

  it('a failing notify is reported, not thrown', async () => {
    const clock = new ManualClock();
    const errors: unknown[] = [];
    const sw = new DeadmanSwitch({
      timeoutMs: TIMEOUT,
      clock,
      notify: () => Promise.reject(new Error('outbox down')),
      onError: (e) => errors.push(e),
    });
    sw.start();
    await clock.advance(TIMEOUT);
    expect(errors).toHaveLength(1);
    sw.stop();
  });
});
