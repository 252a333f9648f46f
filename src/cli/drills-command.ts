import { type Drill, describeFigures } from '../domain/drill.js';
import { type CliIo, ExitCode } from './cli-io.js';
import { openReadOnlyStore } from './read-only-store.js';

/** The most drills `okome drills` lists (newest first). */
export const DRILLS_LISTED = 200;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** What `okome drills --json` prints for one drill: times as ISO strings, no approval internals. */
export function drillJson(d: Drill) {
  return {
    id: d.id,
    kind: d.kind,
    incident: d.incidentNumber,
    phase: d.phase,
    outcome: d.outcome,
    node: d.node,
    requester: d.requester,
    approvers: d.approval.approvers.map((a) => a.user),
    requestedAt: iso(d.requestedAt),
    startedAt: iso(d.startedAt),
    finishedAt: iso(d.finishedAt),
    figures: d.figures,
    summary: d.summary,
  };
}

/** `okome drills [--json]`: the drill history, newest first. Read-only, beside a serving bot. */
export async function drillsCommand(
  options: { config: string | undefined; json: boolean },
  io: CliIo,
): Promise<number> {
  const store = await openReadOnlyStore(options.config, io);
  try {
    const drills = await store.drills(DRILLS_LISTED);
    if (options.json) {
      io.stdout.write(`${JSON.stringify(drills.map(drillJson), null, 2)}\n`);
      return ExitCode.Ok;
    }
    if (drills.length === 0) io.stdout.write('no drills yet (/okome drill failover|redis in Slack)\n');
    for (const d of drills) {
      const when = iso(d.finishedAt ?? d.startedAt ?? d.requestedAt);
      const state = d.outcome ?? d.phase;
      io.stdout.write(
        `${d.id} ${d.kind} (incident ${d.incidentNumber}) ${state} ${when}${d.node === null ? '' : ` on ${d.node}`}\n`,
      );
      if (d.figures !== null) io.stdout.write(`    ${describeFigures(d.figures)}\n`);
      else if (d.summary !== null) io.stdout.write(`    ${d.summary}\n`);
    }
    return ExitCode.Ok;
  } finally {
    await store.close();
  }
}
