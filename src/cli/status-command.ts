import { resolve } from 'node:path';
import { configPath, loadConfig } from '../config/load-config.js';
import { readEnvOptions } from '../config/read-env.js';
import { createDiagnostics, type Scope } from '../diagnostics/diagnose.js';
import { RedisSampleFile, redisSamplePath } from '../diagnostics/redis-sample-file.js';
import { didYouMean } from '../domain/suggest.js';
import { createLogger, logFormatFor } from '../logger.js';
import { createProbes } from '../probes/create-probes.js';
import { type CliIo, ExitCode } from './cli-io.js';
import { renderText } from './render-text.js';

/**
 * `okome status | validate | check TARGET` in the terminal. Exit codes: 0 healthy, 1 at least
 * one incident or failing check (an unreachable node is evidence), 3 nothing could be diagnosed
 * (the bot reached nothing: isolation). Configuration errors are thrown to run-cli (exit 2).
 */
export async function statusCommand(
  scope: Scope,
  options: { config: string | undefined; json: boolean },
  io: CliIo,
): Promise<number> {
  const config = loadConfig(resolve(io.cwd, configPath(options.config, io.env)));
  const env = readEnvOptions(io.env);
  // Logs go to stderr only when asked: stdout carries the report (or its JSON).
  const logger = createLogger({
    format: logFormatFor(io.env, io.stderr.isTTY),
    level: io.env.OKOME_LOG_LEVEL ?? 'silent',
    secrets: [env.redisPassword],
  });
  const probes = createProbes(config, { redisPassword: env.redisPassword, logger });
  try {
    const diagnostics = createDiagnostics({
      config,
      ...probes,
      redisSamples: new RedisSampleFile(redisSamplePath(config), logger),
    });
    if (scope.kind === 'check' && !diagnostics.targets().includes(scope.target)) {
      io.stderr.write(
        `okome check: unknown target "${scope.target}".${didYouMean(scope.target, diagnostics.targets())}\nTargets: ${diagnostics.targets().join(', ')}\n`,
      );
      return ExitCode.ConfigError;
    }
    const report = await diagnostics.run(scope);
    io.stdout.write(
      options.json
        ? `${JSON.stringify(report, null, 2)}\n`
        : renderText(report, { colour: io.stdout.isTTY === true && io.env.NO_COLOR === undefined }),
    );
    // Isolation implies nothing was judged; said explicitly so the verdict alone decides exit 3.
    if (report.isolation !== undefined || !report.diagnosable) return ExitCode.Undiagnosable;
    return report.healthy ? ExitCode.Ok : ExitCode.Incident;
  } finally {
    await probes.close();
  }
}
