import { buildCoverage, type Coverage } from '../domain/coverage.js';
import type { CoverageStore, DrillStore } from '../store/store-port.js';

/**
 * Runbook coverage from the store: one read of every incident's newest times and one of the
 * newest drill of each kind, built by the pure builder. `/okome coverage` and `okome coverage`
 * both come here.
 */
export type CoverageReadStore = CoverageStore & Pick<DrillStore, 'lastDrills'>;

export async function coverageOf(store: CoverageReadStore, now: number): Promise<Coverage> {
  const [incidents, drills] = await Promise.all([store.incidentCoverage(), store.lastDrills()]);
  return buildCoverage({ incidents, drills, generatedAt: now });
}
