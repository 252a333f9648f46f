import { describe, expect, it } from 'vitest';
import {
  type VipEvent,
  type VipObservation,
  VipWatcher,
  type VipWatcherOptions,
} from '../../src/alerts/vip-watcher.js';
import type { VipState } from '../../src/domain/classify.js';

/** A manual clock: timers run only when the test advances time. */
class FakeTime {
  now = 0;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private nextId = 0;

  setTimer = (fn: () => void, ms: number) => {
    const id = this.nextId++;
    this.timers.push({ at: this.now + ms, fn, id });
    return () => {
      this.timers = this.timers.filter((t) => t.id !== id);
    };
  };

  pending(): number {
    return this.timers.length;
  }

  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await settle();
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((t) => t.id !== due.id);
      this.now = due.at;
      due.fn();
    }
    this.now = end;
    await settle();
  }
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

const single = (holder: string): VipState => ({ kind: 'single', holder });
const none: VipState = { kind: 'none' };
const split = (...holders: string[]): VipState => ({ kind: 'split', holders });
const unknown: VipState = { kind: 'unknown', reason: 'ssh down' };

type Step = VipState | [VipState, boolean] | 'throw' | 'hang';

/** Runs the watcher over one scripted observation per poll; returns the events (kind + key fields). */
async function run(steps: Step[], options: Partial<VipWatcherOptions> = {}) {
  const time = new FakeTime();
  const events: VipEvent[] = [];
  let i = 0;
  const watcher = new VipWatcher({
    probe: () => {
      const step = steps[i++] ?? steps[steps.length - 1] ?? unknown;
      if (step === 'throw') return Promise.reject(new Error('probe failed'));
      if (step === 'hang') return new Promise<VipObservation>(() => {});
      const [state, httpOk] = Array.isArray(step) ? step : [step, true];
      return Promise.resolve({ state, httpOk, detail: `poll ${i}` });
    },
    onEvent: (e) => {
      events.push(e);
    },
    now: () => time.now,
    setTimer: time.setTimer,
    intervalMs: 2000,
    ...options,
  });
  watcher.start();
  await time.advance(2000 * (steps.length - 1));
  watcher.stop();
  return { events, watcher, time, polls: () => i };
}

const brief = (e: VipEvent) => {
  switch (e.kind) {
    case 'holder-changed':
      return `moved ${e.from}->${e.to}`;
    case 'no-holder':
      return `none (last ${e.lastHolder ?? '-'})${e.baseline ? ' baseline' : ''}`;
    case 'split-brain':
      return `split ${e.holders.join('+')}${e.baseline ? ' baseline' : ''}`;
    case 'recovered':
      return `recovered ${e.holder} after ${e.after} (was ${e.previousHolder ?? '-'})`;
    default:
      return `${e.kind}${e.baseline ? ' baseline' : ''}`;
  }
};

describe('VipWatcher', () => {
  it('says nothing for a healthy baseline and a steady state', async () => {
    const { events, polls } = await run([single('pi-a'), single('pi-a'), single('pi-a')]);
    expect(events).toEqual([]);
    expect(polls()).toBe(3);
  });

  it('reports a holder change at once (one observation), with time and detail', async () => {
    const { events } = await run([single('pi-a'), single('pi-b'), single('pi-b')]);
    expect(events).toEqual([
      { kind: 'holder-changed', from: 'pi-a', to: 'pi-b', at: 2000, detail: 'poll 2', baseline: false },
    ]);
  });

  it('reports a baseline of no holder or split brain, after confirmation', async () => {
    expect((await run([none, none])).events.map(brief)).toEqual(['none (last -) baseline']);
    expect((await run([split('pi-b', 'pi-a'), split('pi-a', 'pi-b')])).events.map(brief)).toEqual([
      'split pi-a+pi-b baseline',
    ]);
    expect((await run([none])).events).toEqual([]);
  });

  it('ignores a one-poll gap with no holder during a failover', async () => {
    const { events } = await run([single('pi-a'), none, single('pi-b'), single('pi-b')]);
    expect(events.map(brief)).toEqual(['moved pi-a->pi-b']);
  });

  it('reports no holder after two polls, then recovery naming the previous holder', async () => {
    const { events } = await run([single('pi-a'), none, none, none, single('pi-b')]);
    expect(events.map(brief)).toEqual(['none (last pi-a)', 'recovered pi-b after none (was pi-a)']);
  });

  it('reports split brain (hard crash leaves a stale VIP) and its end', async () => {
    const { events } = await run([
      single('pi-a'),
      split('pi-a', 'pi-b'),
      split('pi-a', 'pi-b'),
      split('pi-a', 'pi-b'),
      single('pi-b'),
    ]);
    expect(events.map(brief)).toEqual(['split pi-a+pi-b', 'recovered pi-b after split (was pi-a)']);
  });

  it('treats unknown observations and probe errors as no news, keeping streaks', async () => {
    const { events } = await run([single('pi-a'), unknown, 'throw', none, unknown, none, unknown]);
    expect(events.map(brief)).toEqual(['none (last pi-a)']);
  });

  it('never reports anything from unknowns alone', async () => {
    expect((await run([unknown, 'throw', unknown, 'throw'])).events).toEqual([]);
  });

  it('debounces HTTP down (two polls) and reports HTTP up at once', async () => {
    const a = single('pi-a');
    const { events } = await run([
      [a, true],
      [a, false],
      [a, true],
      [a, false],
      [a, false],
      [a, false],
      [a, true],
    ]);
    expect(events.map(brief)).toEqual(['http-down', 'http-up']);
  });

  it('reports HTTP down at baseline and keeps HTTP separate from ownership', async () => {
    const { events } = await run([
      [none, false],
      [none, false],
      [single('pi-b'), true],
    ]);
    expect(events.map(brief)).toEqual([
      'none (last -) baseline',
      'http-down baseline',
      'recovered pi-b after none (was -)',
      'http-up',
    ]);
  });

  it('honours configured confirmations', async () => {
    // The baseline needs two polls too; a flap back to pi-a breaks pi-b's streak.
    const a = single('pi-a');
    const b = single('pi-b');
    const { events } = await run([a, a, b, a, b, b], {
      confirmations: { holder: 2 },
    });
    expect(events.map(brief)).toEqual(['moved pi-a->pi-b']);
  });

  it('a hanging probe times out as unknown and polling goes on', async () => {
    const { events, polls } = await run(['hang', single('pi-a'), single('pi-b')], { probeTimeoutMs: 1000 });
    // 0: hangs until 1000 (timeout), next at 2000 → pi-a (baseline), 4000 → pi-b.
    expect(events.map(brief)).toEqual(['moved pi-a->pi-b']);
    expect(polls()).toBe(3);
  });

  it('never overlaps polls: a slow probe delays the next one', async () => {
    const time = new FakeTime();
    let active = 0;
    let maxActive = 0;
    let count = 0;
    const watcher = new VipWatcher({
      probe: async () => {
        active += 1;
        count += 1;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((resolve) => time.setTimer(resolve, 3000));
        active -= 1;
        return { state: single('pi-a'), httpOk: true, detail: '' };
      },
      onEvent: () => {},
      now: () => time.now,
      setTimer: time.setTimer,
      intervalMs: 2000,
    });
    watcher.start();
    void watcher.poll();
    await time.advance(10_000);
    watcher.stop();
    expect(maxActive).toBe(1);
    // Polls start at 0, 3000, 6000, 9000: each right after the previous one ends.
    expect(count).toBe(4);
  });

  it('stop() cancels the timer and drops a late answer; start() is idempotent', async () => {
    const time = new FakeTime();
    const events: VipEvent[] = [];
    let release: ((o: VipObservation) => void) | undefined;
    let calls = 0;
    const watcher = new VipWatcher({
      probe: () => {
        calls += 1;
        return new Promise((resolve) => {
          release = resolve;
        });
      },
      onEvent: (e) => {
        events.push(e);
      },
      now: () => time.now,
      setTimer: time.setTimer,
    });
    watcher.start();
    watcher.start();
    expect(calls).toBe(1);
    watcher.stop();
    release?.({ state: none, httpOk: false, detail: '' });
    await time.advance(60_000);
    expect(events).toEqual([]);
    expect(calls).toBe(1);
    expect(time.pending()).toBe(0);
  });

  it('survives an onEvent that throws or rejects, reporting to onError', async () => {
    const time = new FakeTime();
    const errors: unknown[] = [];
    let n = 0;
    const states = [single('pi-a'), single('pi-b'), single('pi-a')];
    const watcher = new VipWatcher({
      probe: async () => ({ state: states[n++] ?? single('pi-a'), httpOk: true, detail: '' }),
      onEvent: (e) => {
        if (e.kind === 'holder-changed' && e.to === 'pi-b') throw new Error('sync boom');
        return Promise.reject(new Error('async boom'));
      },
      onError: (error) => errors.push(error),
      now: () => time.now,
      setTimer: time.setTimer,
    });
    watcher.start();
    await time.advance(4000);
    watcher.stop();
    expect(errors.map((e) => (e as Error).message)).toEqual(['sync boom', 'async boom']);
    expect(watcher.current()).toEqual({ holding: single('pi-a'), httpOk: true });
  });

  it('says when a look saw the confirmed holder again (onSteady, with when the look began), never on a change or an unknown look', async () => {
    const steady: Array<[string, number]> = [];
    const { events } = await run(
      [single('pi-a'), single('pi-a'), unknown, single('pi-a'), single('pi-b'), single('pi-b')],
      {
        onSteady: (holder, lookStartedAt) => {
          steady.push([holder, lookStartedAt]);
        },
      },
    );
    // The baseline and the move are news (or none); the looks that saw the same holder again are steady.
    expect(events.map(brief)).toEqual(['moved pi-a->pi-b']);
    expect(steady).toEqual([
      ['pi-a', 2000],
      ['pi-a', 6000],
      ['pi-b', 10_000],
    ]);
  });

  describe('changes pushed by the address monitor (nudge, quiet)', () => {
    /** A watcher whose probe answers whatever `state` holds now; counts polls and their times. */
    function pushed(options: Partial<VipWatcherOptions> = {}) {
      const time = new FakeTime();
      const events: VipEvent[] = [];
      const polls: number[] = [];
      let state: VipState = single('pi-a');
      let quiet = true;
      let unseen: string[] = [];
      const watcher = new VipWatcher({
        probe: async () => {
          polls.push(time.now);
          return { state, httpOk: true, detail: '', unseen };
        },
        onEvent: (e) => {
          events.push(e);
        },
        now: () => time.now,
        setTimer: time.setTimer,
        intervalMs: 2000,
        idleIntervalMs: 30_000,
        quiet: () => quiet,
        ...options,
      });
      return {
        time,
        events,
        polls,
        watcher,
        set: (s: VipState) => {
          state = s;
        },
        setQuiet: (q: boolean) => {
          quiet = q;
        },
        setUnseen: (nodes: string[]) => {
          unseen = nodes;
        },
      };
    }

    it('polls only every idle interval while the streams are up and nothing is pending; every interval when they are not', async () => {
      const w = pushed();
      w.watcher.start();
      await w.time.advance(60_000);
      expect(w.polls).toEqual([0, 30_000, 60_000]);
      // A stream ends: the monitor says so with a nudge, and polling is back to every interval.
      w.setQuiet(false);
      w.watcher.nudge();
      await w.time.advance(10_000);
      expect(w.polls.slice(3)).toEqual([60_000, 62_000, 64_000, 66_000, 68_000, 70_000]);
      w.watcher.stop();
    });

    it('a node the last look could not see keeps the fast pace, streams up or not (a stream over a stalled link still looks open)', async () => {
      const w = pushed();
      w.watcher.start();
      await w.time.advance(30_000);
      expect(w.polls).toEqual([0, 30_000]);
      // pi-a's link stalls: its stream stays "up" until SSH keepalive gives up, but the idle poll
      // cannot read pi-a's addresses.
      w.setUnseen(['pi-a']);
      await w.time.advance(30_000);
      expect(w.polls.slice(2)).toEqual([60_000]);
      await w.time.advance(6000);
      expect(w.polls.slice(3)).toEqual([62_000, 64_000, 66_000]);
      // Seen again: back to the idle pace after that look.
      w.setUnseen([]);
      await w.time.advance(40_000);
      expect(w.polls.slice(6)).toEqual([68_000, 98_000]);
      w.watcher.stop();
    });

    it('a nudge polls at once: a move is reported when it is pushed, not at the next idle poll', async () => {
      const w = pushed();
      w.watcher.start();
      await w.time.advance(5000);
      w.set(single('pi-b'));
      w.watcher.nudge();
      await w.time.advance(0);
      expect(w.events.map(brief)).toEqual(['moved pi-a->pi-b']);
      expect(w.polls).toEqual([0, 5000]);
      w.watcher.stop();
    });

    it('nudged polls cannot confirm a passing moment: no holder needs its streak to span an interval, polled every interval meanwhile', async () => {
      const w = pushed();
      w.watcher.start();
      await w.time.advance(1000);
      w.set(none);
      // Three pushes within 20 ms (pi-a's address deleted, its stream ended, …).
      for (const _ of [1, 2, 3]) {
        w.watcher.nudge();
        await w.time.advance(10);
      }
      expect(w.polls.length).toBeGreaterThanOrEqual(3);
      expect(w.events).toEqual([]);
      // pi-b takes the VIP before an interval has passed: never news.
      w.set(single('pi-b'));
      w.watcher.nudge();
      await w.time.advance(10);
      expect(w.events.map(brief)).toEqual(['moved pi-a->pi-b']);
      // A real outage: no holder through a whole interval of polls → reported once.
      w.set(none);
      w.watcher.nudge();
      await w.time.advance(1000);
      expect(w.events.map(brief)).toEqual(['moved pi-a->pi-b']);
      await w.time.advance(2000);
      expect(w.events.map(brief)).toEqual(['moved pi-a->pi-b', 'none (last pi-b)']);
      w.watcher.stop();
    });

    it('a nudge during a poll polls once more right after it (that answer may predate the change)', async () => {
      const time = new FakeTime();
      const events: VipEvent[] = [];
      let release: (() => void) | undefined;
      let state: VipState = single('pi-a');
      let calls = 0;
      const watcher = new VipWatcher({
        probe: () => {
          calls++;
          const answer = state;
          if (calls !== 2) return Promise.resolve({ state: answer, httpOk: true, detail: '' });
          return new Promise<VipObservation>((resolve) => {
            release = () => resolve({ state: answer, httpOk: true, detail: '' });
          });
        },
        onEvent: (e) => {
          events.push(e);
        },
        now: () => time.now,
        setTimer: time.setTimer,
        intervalMs: 2000,
        idleIntervalMs: 30_000,
        quiet: () => true,
      });
      watcher.start();
      await time.advance(1000);
      void watcher.poll();
      state = single('pi-b');
      watcher.nudge();
      watcher.nudge();
      release?.();
      await time.advance(0);
      expect(calls).toBe(3);
      expect(events.map(brief)).toEqual(['moved pi-a->pi-b']);
      watcher.stop();
    });
  });
});
