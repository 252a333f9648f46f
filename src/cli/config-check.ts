import { resolve } from 'node:path';
import { configWarnings } from '../config/config-warnings.js';
import { ConfigError, configPath, loadConfig } from '../config/load-config.js';
import { isOkomeError } from '../errors.js';
import { type CliIo, ExitCode } from './cli-io.js';

/** `okome config check [FILE]`: every problem at once, or a one-line summary and any warnings. */
export function configCheck(file: string | undefined, io: CliIo): number {
  let path: string;
  try {
    path = resolve(io.cwd, configPath(file, io.env));
    const config = loadConfig(path);
    const frontends = config.nodes.filter((n) => n.roles.includes('frontend')).length;
    io.stdout.write(
      `ok: ${path}: ${config.nodes.length} node(s) (${frontends} frontend), VIP ${config.vip.address}, ${config.actions.length} action(s)\n`,
    );
    for (const w of configWarnings(config))
      io.stderr.write(`  ⚠ warning: ${w.path}: ${w.message}\n      fix: ${w.fix}\n`);
    return ExitCode.Ok;
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`${error.file}: ${error.problems.length} problem(s)\n`);
      for (const p of error.problems) {
        const where = p.path === '' ? '(file)' : p.path;
        const seen = p.value === undefined ? 'missing' : `got ${p.value}`;
        io.stderr.write(`  ✗ ${where}: ${p.message} (${seen})\n      fix: ${p.fix}\n`);
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
