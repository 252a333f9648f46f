import { newApproval } from '../../src/domain/approval.js';
import { type Drill, type DrillKind, newDrill } from '../../src/domain/drill.js';

let approvals = 0;

/** A new drill (awaiting approval) as the drill service makes one; `at` is its request time. */
export function drillInput(kind: DrillKind, at: number): Omit<Drill, 'id'> {
  approvals += 1;
  const approval = newApproval({
    id: `ap_DRILLFIXTURE${String(approvals).padStart(8, '0')}`,
    incidentId: 0,
    actionId: kind === 'failover' ? 'drill-stop-keepalived' : 'drill-stop-redis',
    targets: [kind === 'failover' ? 'pi-a' : 'pi-b'],
    commands: [],
    requiredApprovals: kind === 'failover' ? 2 : 1,
    requester: 'U0REQUEST',
    now: at,
    ttlMs: 900_000,
  });
  return newDrill({ kind, requester: 'U0REQUEST', channel: 'C0INCIDENT', approval, now: at });
}
