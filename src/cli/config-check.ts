import { resolve } from 'node:path';
import { ConfigError, configPath, loadConfig } from '../config/load-config.js';
import { isOkomeError } from '../errors.js';
import { type CliIo, ExitCode } from './cli-io.js';

const MAX_PROBLEMS_SHOWN = 50;

/** `okome config check [FILE]`: every problem at once, or a one-line summary. */
export function configCheck(file: string | undefined, io: CliIo): number {
  let path: string;
  try {
    path = resolve(io.cwd, configPath(file, io.env));
    const config = loadConfig(path);
    const frontends = config.nodes.filter((n) => n.roles.includes('frontend')).length;
    io.stdout.write(
      `ok: ${path}: ${config.nodes.length} node(s) (${frontends} frontend), VIP ${config.vip.address}, ${config.actions.length} action(s)\n`,
    );
    return ExitCode.Ok;
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`${error.file}: ${error.problems.length} problem(s)\n`);
      // A file of garbage can have thousands; the first ones say what is wrong.
      const shown = error.problems.slice(0, MAX_PROBLEMS_SHOWN);
      for (const p of shown) {
        const where = p.path === '' ? '(file)' : p.path;
        // A problem with the whole file has no value to show.
        const seen = p.value !== undefined ? ` (got ${p.value})` : p.path === '' ? '' : ' (missing)';
        io.stderr.write(`  ✗ ${where}: ${p.message}${seen}\n      fix: ${p.fix}\n`);
      }
      if (error.problems.length > shown.length) {
        io.stderr.write(`  … and ${error.problems.length - shown.length} more\n`);
      }
      return ExitCode.ConfigError;
    }
    if (isOkomeError(error)) {
      io.stderr.write(`${error.code}: ${error.message}\n`);
      return ExitCode.ConfigError;
    }
    throw error;
  }
}
