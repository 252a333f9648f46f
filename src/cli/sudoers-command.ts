import { resolve } from 'node:path';
import { ConfigError, configPath, loadConfig } from '../config/load-config.js';
import { isOkomeError } from '../errors.js';
import { generateSudoers } from '../remediation/sudoers.js';
import { type CliIo, ExitCode } from './cli-io.js';

/**
 * `okome sudoers [--config FILE] [--node NAME]`: prints the sudoers drop-in generated from the
 * action catalogue (every node's section, or one node's). Exit 0, or 2 on a configuration
 * problem or a command sudoers cannot express exactly.
 */
export function sudoersCommand(
  argsConfigPath: string | undefined,
  node: string | undefined,
  io: CliIo,
): number {
  try {
    const config = loadConfig(resolve(io.cwd, configPath(argsConfigPath, io.env)));
    io.stdout.write(generateSudoers(config, node === undefined ? {} : { node }));
    return ExitCode.Ok;
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(
        `${error.file}: ${error.problems.length} problem(s); run \`okome config check\` for details\n`,
      );
      for (const p of error.problems)
        io.stderr.write(`  ✗ ${p.path === '' ? '(file)' : p.path}: ${p.message}\n`);
      return ExitCode.ConfigError;
    }
    if (isOkomeError(error) && error.userSafe) {
      io.stderr.write(`${error.code}: ${error.message}\n`);
      return ExitCode.ConfigError;
    }
    throw error;
  }
}
