import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load-config.js';
import { didYouMean } from '../domain/suggest.js';
import { isOkomeError } from '../errors.js';
import { auditCommand } from './audit-command.js';
import { type CliIo, ExitCode } from './cli-io.js';
import { configCheck, configSchemaCommand } from './config-check.js';
import { coverageCommand } from './coverage-command.js';
import { doctorCommand } from './doctor-command.js';
import { drillsCommand } from './drills-command.js';
import { healthcheckCommand } from './healthcheck-command.js';
import { COMMAND_HELP, COMMAND_NAMES, isCommandName, SUBCOMMANDS } from './help.js';
import { hostkeysCommand } from './hostkeys-command.js';
import { reportCommand } from './report-command.js';
import { serveCommand } from './serve-command.js';
import { statusCommand } from './status-command.js';
import { storeMigrateCommand } from './store-command.js';
import { sudoersCommand } from './sudoers-command.js';

export const USAGE = `okome — OKOME cache layer incident bot

Usage:
  okome serve                   the bot: Slack (Socket Mode with SLACK_APP_TOKEN, else HTTP mode)
  okome status [--json]         run every runbook check, classify incidents
  okome validate [--json]       the validation script's checks (SSH, services, memory, disk, network, HTTP, VIP)
  okome check TARGET [--json]   one check id, one node, or one incident's checks (okome help check)
  okome sudoers [--node NAME]   the sudoers drop-in allowing exactly the catalogue's commands
  okome audit [--since 12h] [--json]   every click, decision and execution
  okome report INCIDENT [--out FILE]   an incident's post-incident report (Markdown)
  okome drills [--json]         the drill history (/okome drill failover|redis), newest first
  okome coverage [--json]       each runbook incident: what detects and fixes it, last seen/fixed/verified/drilled
  okome config check [--static] [FILE]   validate a configuration (FILE or --config or OKOME_CONFIG)
  okome config schema           the configuration's JSON Schema
  okome hostkeys [--node NAME]  each node's SSH host key next to its pin (never edits the config)
  okome doctor                  every check an operator needs when something is off, one line each
  okome store migrate --to postgres [--from FILE]   copy the SQLite store into OKOME_DATABASE_URL
  okome healthcheck             GET /healthz of the configured bot: exit 0 healthy, 1 not
  okome help COMMAND            one command's help (or okome COMMAND --help)
  okome --version               the version

Options:
  --config FILE                 the configuration file (default: $OKOME_CONFIG)

Exit codes: 0 ok, 1 incident found, 2 configuration or usage error, 3 nothing could be diagnosed,
4 Slack could not be reached at start-up (okome serve), 5 a host key differs from its pin (okome hostkeys).
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
    io.stderr.write(`okome: ${unknownOptionMessage(error)}\nRun okome --help for the usage.\n`);
    return ExitCode.ConfigError;
  }
  const { values, positionals } = parsed;
  if (values.version === true) {
    io.stdout.write(`${VERSION}\n`);
    return ExitCode.Ok;
  }
  const [command, sub, ...rest] = positionals;
  if (command === undefined || (command === 'help' && sub === undefined)) {
    io.stdout.write(USAGE);
    return ExitCode.Ok;
  }
  // `okome help check` and `okome check --help` say the same.
  const helpFor = command === 'help' ? sub : values.help === true ? command : undefined;
  if (helpFor !== undefined) {
    if (isCommandName(helpFor)) {
      io.stdout.write(COMMAND_HELP[helpFor]);
      return ExitCode.Ok;
    }
    return unknownCommand(helpFor, io);
  }
  if (!isCommandName(command)) return unknownCommand(command, io);
  if (command === 'check' && sub === undefined) {
    io.stderr.write(`okome check needs a TARGET.\n\n${COMMAND_HELP.check}`);
    return ExitCode.ConfigError;
  }
  const subcommands = SUBCOMMANDS[command];
  if (subcommands !== undefined && (sub === undefined || !subcommands.includes(sub))) {
    io.stderr.write(
      `okome ${command}: ${sub === undefined ? 'needs a subcommand' : `unknown subcommand "${sub}".${didYouMean(sub, subcommands)}`}\n\n${COMMAND_HELP[command]}`,
    );
    return ExitCode.ConfigError;
  }
  try {
    if (command === 'config' && sub === 'check' && rest.length <= 1) {
      return configCheck(rest[0] ?? values.config, io, { static: values.static === true });
    }
    if (command === 'config' && sub === 'schema' && rest.length === 0) return configSchemaCommand(io);
    if (command === 'store' && sub === 'migrate' && rest.length === 0) {
      return await storeMigrateCommand({ config: values.config, to: values.to, from: values.from }, io);
    }
    if (command === 'serve' && sub === undefined) {
      return await serveCommand({ config: values.config }, io, waitForStop);
    }
    if (command === 'healthcheck' && sub === undefined)
      return await healthcheckCommand({ config: values.config }, io);
    if (command === 'doctor' && sub === undefined) return await doctorCommand({ config: values.config }, io);
    if (command === 'hostkeys' && sub === undefined) {
      return await hostkeysCommand({ config: values.config, node: values.node }, io);
    }
    if (command === 'sudoers' && sub === undefined) return sudoersCommand(values.config, values.node, io);
    if (command === 'audit' && sub === undefined) {
      return await auditCommand(
        { config: values.config, since: values.since, json: values.json === true },
        io,
        Date.now(),
      );
    }
    if (command === 'drills' && sub === undefined)
      return await drillsCommand({ config: values.config, json: values.json === true }, io);
    if (command === 'report' && sub !== undefined && rest.length === 0) {
      return await reportCommand({ config: values.config, incident: sub, out: values.out }, io, Date.now());
    }
    if (command === 'coverage' && sub === undefined) {
      return await coverageCommand({ config: values.config, json: values.json === true }, io, Date.now());
    }
    if (command === 'report' && sub === undefined) {
      io.stderr.write(`okome report needs an INCIDENT.\n\n${COMMAND_HELP.report}`);
      return ExitCode.ConfigError;
    }
    const json = values.json === true;
    if ((command === 'status' || command === 'validate') && sub === undefined) {
      return await statusCommand({ kind: command }, { config: values.config, json }, io);
    }
    if (command === 'check' && sub !== undefined && rest.length === 0) {
      return await statusCommand({ kind: 'check', target: sub }, { config: values.config, json }, io);
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`${error.code}: ${error.message}; run \`okome config check\` for the fixes\n`);
      for (const p of error.problems.slice(0, 10))
        io.stderr.write(`  ✗ ${p.path === '' ? '(file)' : p.path}: ${p.message}\n`);
      return ExitCode.ConfigError;
    }
    if (isOkomeError(error) && error.userSafe) {
      io.stderr.write(`${error.code}: ${error.message}\n`);
      return ExitCode.ConfigError;
    }
    throw error;
  }
  io.stderr.write(
    `okome ${command}: unexpected argument(s): ${positionals.slice(1).join(' ')}\n\n${COMMAND_HELP[command]}`,
  );
  return ExitCode.ConfigError;
}

function unknownCommand(command: string, io: CliIo): number {
  io.stderr.write(
    `okome: unknown command "${command}".${didYouMean(command, COMMAND_NAMES)}\nRun okome --help for every command.\n`,
  );
  return ExitCode.ConfigError;
}

const OPTION_NAMES = [
  '--config',
  '--node',
  '--since',
  '--json',
  '--static',
  '--to',
  '--from',
  '--out',
  '--help',
  '--version',
];

/** parseArgs's message, with a suggestion when the option looks like a known one mistyped. */
function unknownOptionMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const option = /Unknown option '([^']+)'/.exec(message)?.[1];
  return option === undefined ? message : `unknown option "${option}".${didYouMean(option, OPTION_NAMES)}`;
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
      static: { type: 'boolean' },
      to: { type: 'string' },
      from: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
}
