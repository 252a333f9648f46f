import { type Coverage, coverageJson } from '../domain/coverage.js';
import { coverageOf } from '../incidents/coverage-use-case.js';
import { type CliIo, ExitCode } from './cli-io.js';
import { openReadOnlyStore } from './read-only-store.js';

/**
 * `okome coverage [--json]`: for each runbook incident, what detects it, what fixes it and what
 * the store remembers of it. Opens the store read-only, like `okome report`: it works beside a
 * serving bot.
 */
export async function coverageCommand(
  options: { config: string | undefined; json: boolean },
  io: CliIo,
  now: number,
): Promise<number> {
  const store = await openReadOnlyStore(options.config, io);
  try {
    const coverage = await coverageOf(store, now);
    io.stdout.write(
      options.json ? `${JSON.stringify(coverageJson(coverage), null, 2)}\n` : coverageText(coverage),
    );
    return ExitCode.Ok;
  } finally {
    await store.close();
  }
}

const when = (ms: number | null) =>
  ms === null ? 'never' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The terminal's view: one block per incident, "never" where the store remembers nothing. */
export function coverageText(coverage: Coverage): string {
  const neverSeen = coverage.incidents.filter((c) => c.lastSeen === null).map((c) => c.number);
  const neverDrilled = coverage.incidents.filter((c) => c.lastDrill === null).map((c) => c.number);
  const lines = [
    `OKOME runbook coverage (${when(coverage.generatedAt)})`,
    `never seen: ${neverSeen.length === 0 ? 'none' : neverSeen.join(', ')}; never rehearsed by a drill: ${neverDrilled.length === 0 ? 'none' : neverDrilled.join(', ')}`,
    '',
  ];
  for (const c of coverage.incidents) {
    const seen =
      c.lastSeen === null
        ? 'never'
        : `${when(c.lastSeen.at)} (${c.lastSeen.key}; ${c.seen} incident${c.seen === 1 ? '' : 's'})`;
    const drill =
      c.lastDrill !== null
        ? `${when(c.lastDrill.finishedAt)} (${c.lastDrill.kind}: ${c.lastDrill.outcome})`
        : c.drillKinds.length > 0
          ? `never (drill: ${c.drillKinds.join(', ')})`
          : 'never (no drill rehearses it)';
    lines.push(
      `Incident ${c.number} — ${c.title}`,
      `  checks         ${c.checks.join(', ')}`,
      `  alert rules    ${c.alertRules.length === 0 ? 'none' : c.alertRules.join(', ')}`,
      `  actions        ${c.actions.length === 0 ? 'none on the cache nodes (runbook)' : c.actions.join(', ')}`,
      `  last seen      ${seen}`,
      `  last fixed     ${when(c.lastFixedAt)}`,
      `  last verified  ${when(c.lastVerifiedAt)}`,
      `  last drill     ${drill}`,
      '',
    );
  }
  const f = coverage.failovers;
  lines.push(
    `VIP failovers: ${f.count}${f.last === null ? '' : `, last ${when(f.last.at)} (${f.last.key}, cause: ${f.last.cause ?? 'not explained yet'})`}; each counts for the incident its cause belongs to, never as incident 4 by its stored number`,
    '',
  );
  return lines.join('\n');
}
