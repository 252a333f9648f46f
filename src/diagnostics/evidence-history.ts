import {
  type BudgetSample,
  type CounterSample,
  type EvidenceHistory,
  emptyHistory,
  pruneHistory,
  type RatioSample,
} from '../domain/windowed-evidence.js';

/**
 * The samples windowed evidence is judged over, kept in memory by the one process that probes.
 * Not stored: Redis's own counters reset on a restart, and a bot that restarts with an empty
 * history only judges a recovery later (it never calls one early), while a flush stays allowed
 * (it runs unless a recovery is proven). Bounded by age and by count.
 */
export class EvidenceHistoryLog {
  private history: EvidenceHistory = emptyHistory;

  constructor(
    private readonly options: {
      /** Older samples cannot anchor a recovery span any more. */
      readonly keepMs: number;
      readonly now: () => number;
      readonly maxSamples?: number;
    },
  ) {}

  addCounters(sample: CounterSample): void {
    this.update({ ...this.history, counters: [...this.history.counters, sample] });
  }

  addBudget(sample: BudgetSample): void {
    this.update({ ...this.history, budgets: [...this.history.budgets, sample] });
  }

  addNginxRatio(sample: RatioSample): void {
    this.update({ ...this.history, nginxRatios: [...this.history.nginxRatios, sample] });
  }

  snapshot(): EvidenceHistory {
    return this.history;
  }

  private update(next: EvidenceHistory): void {
    const max = this.options.maxSamples ?? 10_000;
    const pruned = pruneHistory(next, this.options.now(), this.options.keepMs);
    this.history = {
      counters: pruned.counters.slice(-max),
      budgets: pruned.budgets.slice(-max),
      nginxRatios: pruned.nginxRatios.slice(-max),
    };
  }
}
