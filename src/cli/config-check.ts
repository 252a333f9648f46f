import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { configWarnings } from '../config/config-warnings.js';
import { deploymentProblems, type HostAccess } from '../config/deployment-check.js';
import { configJsonSchema } from '../config/json-schema.js';
import { ConfigError, type ConfigProblem, configPath, loadConfig } from '../config/load-config.js';
import { isOkomeError } from '../errors.js';
import { type CliIo, ExitCode } from './cli-io.js';

const MAX_PROBLEMS_SHOWN = 50;

/** The real host: files as this process sees them. */
export const localHost: HostAccess = {
  stat(path) {
    try {
      const s = statSync(path);
      return { uid: s.uid, mode: s.mode };
    } catch {
      return 'missing';
    }
  },
  readable(path) {
    try {
      accessSync(path, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  },
  uid: process.getuid?.() ?? -1,
};

/**
 * `okome config check [--static] [FILE]`: every problem at once, or a one-line summary; warnings
 * apart. `--static` judges the file alone; the default also checks this host and environment.
 */
export function configCheck(
  file: string | undefined,
  io: CliIo,
  options: { static: boolean; host?: HostAccess } = { static: false },
): number {
  let path: string;
  try {
    path = resolve(io.cwd, configPath(file, io.env));
    const config = loadConfig(path);
    if (!options.static) {
      const problems = deploymentProblems(config, io.env, options.host ?? localHost);
      if (problems.length > 0) {
        writeProblems(path, problems, io, ' (run with --static to check the file alone)');
        return ExitCode.ConfigError;
      }
    }
    const frontends = config.nodes.filter((n) => n.roles.includes('frontend')).length;
    io.stdout.write(
      `ok${options.static ? ' (static)' : ''}: ${path}: ${config.nodes.length} node(s) (${frontends} frontend), VIP ${config.vip.address}, ${config.actions.length} action(s)\n`,
    );
    for (const w of configWarnings(config))
      io.stderr.write(`  ⚠ warning: ${w.path}: ${w.message}\n      fix: ${w.fix}\n`);
    return ExitCode.Ok;
  } catch (error) {
    if (error instanceof ConfigError) {
      writeProblems(error.file, error.problems, io);
      return ExitCode.ConfigError;
    }
    if (isOkomeError(error)) {
      io.stderr.write(`${error.code}: ${error.message}\n`);
      return ExitCode.ConfigError;
    }
    throw error;
  }
}

function writeProblems(file: string, problems: readonly ConfigProblem[], io: CliIo, note = ''): void {
  io.stderr.write(`${file}: ${problems.length} problem(s)${note}\n`);
  // A file of garbage can have thousands; the first ones say what is wrong.
  const shown = problems.slice(0, MAX_PROBLEMS_SHOWN);
  for (const p of shown) {
    const where = p.path === '' ? '(file)' : p.path;
    // A problem with the whole file has no value to show.
    const seen =
      p.value !== undefined
        ? ` (got ${p.value})`
        : p.path === '' || p.path.startsWith('(')
          ? ''
          : ' (missing)';
    io.stderr.write(`  ✗ ${where}: ${p.message}${seen}\n      fix: ${p.fix}\n`);
  }
  if (problems.length > shown.length) {
    io.stderr.write(`  … and ${problems.length - shown.length} more\n`);
  }
}

/** `okome config schema`: the JSON Schema editors validate the file with. */
export function configSchemaCommand(io: CliIo): number {
  io.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  return ExitCode.Ok;
}
