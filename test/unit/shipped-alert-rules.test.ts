import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { DEFAULT_ALERT_MAPPING, incidentForAlert } from '../../src/alerts/alert-config.js';
import { incidentNumbers } from '../../src/domain/runbook.js';
import { shippedAlertRules } from '../../src/domain/shipped-alert-rules.js';

const RULES = join(import.meta.dirname, '../../contrib/prometheus/okome.rules.yml');

const rulesFile = z.object({
  groups: z.array(
    z.object({
      rules: z.array(z.object({ alert: z.string(), labels: z.record(z.string(), z.string()).optional() })),
    }),
  ),
});

/** Every alert rule of the shipped file with its `incident` label, in the file's order. */
function rulesInFile(): { alert: string; incident: string | null }[] {
  const doc = rulesFile.parse(parse(readFileSync(RULES, 'utf8')));
  return doc.groups.flatMap((g) =>
    g.rules.map((r) => ({ alert: r.alert, incident: r.labels?.incident ?? null })),
  );
}

describe('the shipped alert rules table (coverage)', () => {
  it('reflects every rule of contrib/prometheus/okome.rules.yml and its incident label, in order', () => {
    expect(shippedAlertRules).toEqual(rulesInFile());
  });

  it('names only runbook incidents, and every rule with one is mapped to that incident by default', () => {
    for (const rule of shippedAlertRules) {
      if (rule.incident === null) continue;
      expect(incidentNumbers).toContain(rule.incident);
      expect(incidentForAlert({ alertname: rule.alert }, DEFAULT_ALERT_MAPPING)?.incident, rule.alert).toBe(
        rule.incident,
      );
    }
  });
});
