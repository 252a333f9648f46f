/**
 * Who runs the singletons (the VIP watcher, the expiry and recovery sweeps, the dead-man's
 * timer, pruning): exactly one process of a deployment. A SQLite store has one serving process
 * (its serve lock), which is always the leader; replicas on PostgreSQL elect one
 * (postgres-leader.ts).
 */
export interface Leadership {
  /**
   * Campaigns until stop(). `elected` runs when this process becomes the leader, with the
   * fencing token of its term; `deposed` when it stops being it (its lease lost or stop()),
   * and resolves once its singletons are stopped: only then may a new term start here.
   */
  start(events: LeaderEvents): void;
  /** Stops the singletons (deposed), gives the lease up at once for the next leader, stops campaigning. */
  stop(): Promise<void>;
  /** The token of the current term, or undefined when this process is not the leader. */
  term(): number | undefined;
}

export interface LeaderEvents {
  elected(token: number): Promise<void>;
  deposed(reason: string): Promise<void>;
}

/** The one serving process of a store with a serve lock: the leader from start to stop. */
export function soleLeadership(): Leadership {
  let events: LeaderEvents | undefined;
  let elected: Promise<void> | undefined;
  return {
    start(e) {
      events = e;
      elected = e.elected(0);
    },
    async stop() {
      if (events === undefined) return;
      const e = events;
      events = undefined;
      await elected?.catch(() => {});
      await e.deposed('stopping');
    },
    term: () => (events === undefined ? undefined : 0),
  };
}
