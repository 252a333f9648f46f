import type { Lab } from '../test/support/lab/lab.js';
import { PI_NODES, PI_SPECS } from '../test/support/lab/topology.js';
import type { LabView } from './web/api-types.js';

/** One reading of what the panel shows: who holds the VIP, each Pi's units, the orchestrator. */
export async function readLab(lab: Lab): Promise<LabView> {
  const [vipHolders, orchestrator, ...perNode] = await Promise.all([
    lab.vipHolders(),
    lab.orchestratorState().then(
      (s) => (s.mode === 'slow' ? `slow (${s.delayMs} ms)` : s.mode),
      () => 'unreachable',
    ),
    ...PI_NODES.map(async (node) => {
      // One exec per Pi: the lab's systemctl answers one line per unit, in order.
      const spec = PI_SPECS[node];
      const result = await lab.exec(node, ['systemctl', 'is-active', ...spec.units], { timeoutMs: 5000 });
      const lines = result.stdout.trim().split('\n');
      return [
        node,
        Object.fromEntries(spec.units.map((u, i) => [u, lines[i]?.trim() || 'unknown'])),
      ] as const;
    }),
  ]);
  // Built in PI_NODES order, whichever answered first: readings compare as JSON.
  return { vipHolders, units: Object.fromEntries(perNode), orchestrator, at: new Date().toISOString() };
}

/**
 * Reads the lab every `intervalMs` while anyone watches (a page is connected), and on demand
 * (`refresh`, after a fault); tells `onChange` of each reading that differs from the last.
 */
export class LabWatch {
  #watchers = 0;
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<LabView | undefined> | undefined;
  #last: LabView | undefined;
  #lastKey = '';
  #closed = false;
  /** Bumped when polling stops: a reading that ends after that schedules nothing. */
  #generation = 0;

  constructor(
    private readonly lab: Lab,
    private readonly onChange: (view: LabView) => void,
    private readonly intervalMs = 2000,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  get last(): LabView | undefined {
    return this.#last;
  }

  /** Starts polling for one more watcher; the returned function ends that watch. */
  watch(): () => void {
    this.#watchers += 1;
    if (this.#watchers === 1) this.#schedule(0);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#watchers -= 1;
      if (this.#watchers === 0) {
        this.#generation += 1;
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  /** A reading now (joining one in flight). */
  refresh(): Promise<LabView | undefined> {
    if (this.#closed) return Promise.resolve(this.#last);
    this.#reading ??= readLab(this.lab)
      .then(
        (view) => {
          const key = JSON.stringify({ ...view, at: '' });
          this.#last = view;
          if (key !== this.#lastKey) {
            this.#lastKey = key;
            if (!this.#closed) this.onChange(view);
          }
          return view;
        },
        (error: unknown) => {
          this.onError(error);
          return undefined;
        },
      )
      .finally(() => {
        this.#reading = undefined;
      });
    return this.#reading;
  }

  /** Stops polling and waits for a reading in flight (teardown removes what it reads). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#generation += 1;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#reading;
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    const generation = this.#generation;
    this.#timer = setTimeout(() => {
      void this.refresh().then(() => {
        if (generation === this.#generation) this.#schedule(this.intervalMs);
      });
    }, delayMs);
  }
}
