import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ErrorCode, OkomeError } from '../errors.js';
import { findReportedIncident, reportOf } from '../incidents/report-use-case.js';
import { type CliIo, ExitCode } from './cli-io.js';
import { openReadOnlyStore } from './read-only-store.js';

const INCIDENT_REF = /^[a-z0-9][a-z0-9:,._-]{0,127}$/;

/**
 * `okome report INCIDENT [--out FILE]`: the post-incident report's Markdown, on stdout or in
 * FILE. Opens the store read-only, like `okome audit`: it works beside a serving bot.
 */
export async function reportCommand(
  options: { config: string | undefined; incident: string; out: string | undefined },
  io: CliIo,
  now: number,
): Promise<number> {
  if (!INCIDENT_REF.test(options.incident)) {
    throw new OkomeError(
      ErrorCode.UsageInvalid,
      `${JSON.stringify(options.incident.slice(0, 64))} is not an incident key (like 2:pi-b) or number (like 2)`,
      { userSafe: true },
    );
  }
  const store = await openReadOnlyStore(options.config, io);
  try {
    const incident = await findReportedIncident(store, options.incident);
    if (incident === undefined) {
      io.stderr.write(
        `okome report: no incident matches "${options.incident}" (a key like 2:pi-b, or a number)\n`,
      );
      return ExitCode.ConfigError;
    }
    const report = await reportOf(store, incident, now);
    if (options.out === undefined) {
      io.stdout.write(report.markdown);
      return ExitCode.Ok;
    }
    const out = resolve(io.cwd, options.out);
    writeFileSync(out, report.markdown, { mode: 0o644 });
    io.stdout.write(`${out}\n`);
    return ExitCode.Ok;
  } finally {
    await store.close();
  }
}
