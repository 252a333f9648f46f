import { resolve } from 'node:path';
import { configPath, loadConfig } from '../config/load-config.js';
import { readEnvOptions } from '../config/read-env.js';
import { ErrorCode, OkomeError } from '../errors.js';
import { storeTarget } from '../store/open-store.js';
import { type CliIo, ExitCode } from './cli-io.js';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "30m", "12h", "7d" → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(text.trim());
  const unit = m?.[2] === undefined ? undefined : UNITS[m[2]];
  if (m === null || unit === undefined) {
    throw new OkomeError(
      ErrorCode.UsageInvalid,
      `--since ${JSON.stringify(text)}: write a duration like 30m, 12h or 7d`,
      { userSafe: true },
    );
  }
  return Number(m[1]) * unit;
}

/** `okome audit [--since DURATION] [--json]`: every click, decision and execution, oldest first. */
export async function auditCommand(
  options: { config: string | undefined; since: string | undefined; json: boolean },
  io: CliIo,
  now: number,
): Promise<number> {
  const file = resolve(io.cwd, configPath(options.config, io.env));
  const config = loadConfig(file);
  const since = options.since === undefined ? 0 : now - parseDuration(options.since);
  const target = storeTarget(config.store, {
    configFile: file,
    databaseUrl: readEnvOptions(io.env).databaseUrl,
  });
  // Read-only: the audit works beside a serving bot and never creates, migrates or writes the store.
  const store = await target.open({ readOnly: true });
  try {
    const entries = await store.auditSince(since);
    if (options.json) {
      io.stdout.write(
        `${JSON.stringify(
          entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
          null,
          2,
        )}\n`,
      );
      return ExitCode.Ok;
    }
    for (const e of entries) {
      const what = [e.actionId, e.approvalId].filter((x) => x !== null).join(' ');
      const states = e.stateBefore === null ? '' : ` ${e.stateBefore}→${e.stateAfter ?? '?'}`;
      io.stdout.write(
        `${new Date(e.at).toISOString()} ${e.actor} ${e.event} ${what} ${e.verdict}/${e.code}${states}: ${e.reason}\n`,
      );
      if (e.commands.length > 0) io.stdout.write(`    ${e.targets.join(',')}: ${e.commands.join(' | ')}\n`);
    }
    if (entries.length === 0) io.stdout.write('no audit entries in that period\n');
    return ExitCode.Ok;
  } finally {
    await store.close();
  }
}
