import { type CheckResult, factsOf } from '../domain/check-result.js';
import type { StatusReport } from '../domain/report.js';
import type { VipObservation } from './vip-watcher.js';

/** The part of Diagnostics the VIP probe needs (diagnostics/diagnose.ts). */
export interface VipDiagnostics {
  run(scope: { readonly kind: 'check'; readonly target: string }): Promise<StatusReport>;
}

const answered = (c: CheckResult | undefined) =>
  c !== undefined && (c.status === 'ok' || c.status === 'warn');

/**
 * A VipWatcher probe built on the diagnostics engine: the `vip-owner` scope (ip addr on each
 * VIP-capable node) and the `vip-http` check, run in parallel under the engine's deadline.
 */
export function vipProbeFromDiagnostics(diagnostics: VipDiagnostics): () => Promise<VipObservation> {
  return async () => {
    const [owner, http] = await Promise.all([
      diagnostics.run({ kind: 'check', target: 'vip-owner' }),
      diagnostics.run({ kind: 'check', target: 'vip-http' }),
    ]);
    const ownerCheck = owner.checks.find((c) => c.check === 'vip-owner');
    const httpCheck = http.checks.find((c) => c.check === 'vip-http');
    const detail = [ownerCheck?.summary, httpCheck === undefined ? undefined : `HTTP: ${httpCheck.summary}`]
      .filter((s): s is string => s !== undefined && s !== '')
      .join('; ');
    const unseen = factsOf(ownerCheck, 'vip-owner')?.unknown ?? [];
    return { state: owner.vip.state, httpOk: answered(httpCheck), detail, unseen };
  };
}
