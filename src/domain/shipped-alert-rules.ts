import type { IncidentNumber } from './runbook.js';

/**
 * The alert rules shipped in contrib/prometheus/okome.rules.yml, by name with their `incident`
 * label (null: a validation or monitoring rule that names no runbook incident). A table rather
 * than the file read at run time: the image ships no contrib/, and coverage must not depend on
 * where the operator keeps their Prometheus files. test/unit/shipped-alert-rules.test.ts parses
 * the file and fails when a rule, or its incident label, is not reflected here.
 */
export interface ShippedAlertRule {
  readonly alert: string;
  readonly incident: IncidentNumber | null;
}

export const shippedAlertRules: readonly ShippedAlertRule[] = [
  { alert: 'NginxDown', incident: '1' },
  { alert: 'EdgeCacheSlow', incident: '1' },
  { alert: 'RedisDown', incident: '2' },
  { alert: 'VipDown', incident: '3' },
  { alert: 'KeepalivedNoMaster', incident: '3' },
  { alert: 'VipTwoHolders', incident: '3' },
  { alert: 'NodeDown', incident: '4' },
  { alert: 'OrchestratorDown', incident: '5' },
  { alert: 'UpstreamDown', incident: '5' },
  { alert: 'StreamingSlow', incident: '5b' },
  { alert: 'RedisHitRatioLow', incident: '6' },
  { alert: 'RedisBudgetRunaway', incident: '6' },
  { alert: 'ChaosEnabled', incident: '7' },
  { alert: 'ChaosTestTriggered', incident: '7' },
  { alert: 'SdCardOver80Percent', incident: null },
  { alert: 'MemoryHigh', incident: null },
  { alert: 'OkomeTextfileStale', incident: null },
  { alert: 'Watchdog', incident: null },
];
