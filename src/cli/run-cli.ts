import { parseArgs } from 'node:util';
import { isOkomeError } from '../errors.js';
import { auditCommand } from './audit-command.js';
import { type CliIo, ExitCode } from './cli-io.js';
import { configCheck } from './config-check.js';
import { serveCommand } from './serve-command.js';
import { statusCommand } from './status-command.js';
import { sudoersCommand } from './sudoers-command.js';

export const USAGE = `okome — OKOME cache layer incident bot

Usage:
  okome serve                   the bot: Slack (Socket Mode with SLACK_APP_TOKEN, else HTTP mode)
  okome status [--json]         run every runbook check, classify incidents
  okome validate [--json]       the validation script's checks (SSH, services, memory, disk, network, HTTP, VIP)
  okome check TARGET [--json]   one check id, one node, or one incident's checks
  okome sudoers [--node NAME]   the sudoers drop-in allowing exactly the catalogue's commands
  okome audit [--since 12h] [--json]   every click, decision and execution
  okome config check [FILE]     validate a configuration (FILE or --config or OKOME_CONFIG)
  okome --help                  this text
  okome --version               the version

Options:
  --config FILE                 the configuration file (default: $OKOME_CONFIG)

Exit codes: 0 ok, 1 incident found, 2 configuration or usage error, 3 nothing could be diagnosed.
`;

export const VERSION = '0.1.0';

/** Runs one CLI invocation; returns the exit code. Long-running commands resolve when they stop. */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  waitForStop: () => Promise<string> = () => new Promise(() => {}),
): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    io.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return ExitCode.ConfigError;
  }
  const { values, positionals } = parsed;
  if (values.version === true) {
    io.stdout.write(`${VERSION}\n`);
    return ExitCode.Ok;
  }
  const [command, sub, ...rest] = positionals;
  if (values.help === true || command === undefined || command === 'help') {
    io.stdout.write(USAGE);
    return ExitCode.Ok;
  }
  try {
    if (command === 'config' && sub === 'check' && rest.length <= 1) {
      return configCheck(rest[0] ?? values.config, io);
    }
    if (command === 'serve' && sub === undefined) {
      return await serveCommand({ config: values.config }, io, waitForStop);
    }
    if (command === 'sudoers' && sub === undefined) return sudoersCommand(values.config, values.node, io);
    if (command === 'audit' && sub === undefined) {
      return await auditCommand(
        { config: values.config, since: values.since, json: values.json === true },
        io,
        Date.now(),
      );
    }
    const json = values.json === true;
    if ((command === 'status' || command === 'validate') && sub === undefined) {
      return await statusCommand({ kind: command }, { config: values.config, json }, io);
    }
    if (command === 'check' && sub !== undefined && rest.length === 0) {
      return await statusCommand({ kind: 'check', target: sub }, { config: values.config, json }, io);
    }
  } catch (error) {
    if (isOkomeError(error) && error.userSafe) {
      io.stderr.write(`${error.code}: ${error.message}\n`);
      return ExitCode.ConfigError;
    }
    throw error;
  }
  io.stderr.write(`unknown command: ${positionals.join(' ')}\n\n${USAGE}`);
  return ExitCode.ConfigError;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      node: { type: 'string' },
      since: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
}
