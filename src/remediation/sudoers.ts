import type { LoadedConfig, ResolvedNode } from '../config/load-config.js';
import { type CommandPurpose, servicePurposes } from '../config/schema.js';
import { ErrorCode, OkomeError } from '../errors.js';
import { actionTargetsNode, expandSteps } from './plan.js';

/**
 * sudoers from the action catalogue: per node, exactly the commands the bot can run there with
 * sudo (the remediation steps, plus the read-only diagnostics that need root), each with its
 * arguments spelt out so sudo allows nothing else. Installed as /etc/sudoers.d/okome-bot.
 */

export type SudoersConfig = Pick<LoadedConfig, 'nodes' | 'actions' | 'redis' | 'file'>;

/** Debian's locations; sudoers needs absolute paths. */
export const DEFAULT_BINARY_PATHS: Readonly<Record<string, string>> = Object.freeze({
  systemctl: '/usr/bin/systemctl',
  rm: '/usr/bin/rm',
  iptables: '/usr/sbin/iptables',
  'iptables-save': '/usr/sbin/iptables-save',
  nginx: '/usr/sbin/nginx',
});

export interface SudoersOptions {
  /** Bare command name → absolute path; merged over DEFAULT_BINARY_PATHS. */
  readonly paths?: Readonly<Record<string, string>>;
  /** Only this node's section. */
  readonly node?: string;
}

export interface SudoCommand {
  /** Where it comes from: an action id, or `diagnostics`. */
  readonly source: string;
  /** The command as configured, e.g. `sudo systemctl restart nginx`. */
  readonly configured: string;
  /** Absolute path then arguments, as sudo sees them. */
  readonly argv: readonly string[];
  /** The sudoers spelling: escaped, `""` when there are no arguments. */
  readonly entry: string;
}

// Characters a shell passes through unchanged inside one word. Anything else (quotes, `$`,
// globs, `;`, `|`, `&`, `~`, `#`, `\`…) would make the shell's argv differ from the text,
// so the sudoers rule could not match it exactly: refused rather than guessed.
const PLAIN_WORD = /^[A-Za-z0-9_@+=:,./-]+$/;
const ABSOLUTE_PATH = /^\/[A-Za-z0-9_.+/-]+$/;
// In a Cmnd spec's arguments sudoers gives these a meaning; a backslash makes them literal.
const SUDOERS_SPECIAL = /[\\,:=]/g;

/** Read-only diagnostic purposes each node is sent (mirrors diagnostics/check-catalogue.ts). */
function diagnosticPurposes(node: ResolvedNode): Array<readonly [CommandPurpose, string | undefined]> {
  const runsNginx = node.services.includes('nginx');
  const list: Array<readonly [CommandPurpose, string | undefined]> = [
    ...node.services.map((s) => ['serviceState', s] as const),
  ];
  if (node.holdsVip) list.push(['vipOwnership', undefined]);
  list.push(
    ['disk', undefined],
    ['memory', undefined],
    ['linkState', undefined],
    ['chaosFlag', undefined],
    ['firewallRules', undefined],
  );
  if (runsNginx) list.push(['nginxConfig', undefined], ['accessLogTail', undefined]);
  if (node.roles.includes('frontend')) list.push(['prewarmTimer', undefined]);
  if (node.services.includes('keepalived')) list.push(['journalTail', undefined]);
  return list;
}

function bind(template: string, service: string | undefined): string {
  return service === undefined ? template : template.replaceAll('{service}', service);
}

const SUDO = /^\s*sudo\s+/;

/**
 * `sudo A && sudo B`: one configured command that runs several (iptables flushes one table per
 * call). Each part gets its own exact entry; `&&` only as a word of its own, so anything
 * else shell-like still fails the plain-word check.
 */
export function commandParts(configured: string): string[] {
  return configured.split(/\s+&&\s+/);
}

/** `sudo systemctl restart nginx` → its sudoers entry; throws when it cannot be exact. */
export function sudoEntry(
  configured: string,
  source: string,
  node: string,
  paths: Readonly<Record<string, string>>,
): SudoCommand {
  const fail = (why: string, fix: string) =>
    new OkomeError(
      ErrorCode.SudoersUnsupportedCommand,
      `${node}: ${source}: "${configured}" ${why}. To resolve, ${fix}.`,
      { userSafe: true },
    );
  const words = configured.replace(SUDO, '').trim().split(/\s+/);
  const [program, ...args] = words;
  if (program === undefined || program === '') throw fail('names no command', 'write `sudo COMMAND ARGS`');
  if (program.startsWith('-') || program.includes('=')) {
    throw fail('passes options or variables to sudo', 'write the command right after `sudo `');
  }
  for (const word of words) {
    if (!PLAIN_WORD.test(word)) {
      throw fail(
        `has shell syntax in "${word}" (only letters, digits and _ @ + = : , . / - are allowed)`,
        'write a plain command without quotes, globs, variables, pipes or redirections',
      );
    }
  }
  const path = program.startsWith('/') ? program : paths[program];
  if (path === undefined) {
    throw fail(
      `runs "${program}", whose absolute path is unknown`,
      `write its absolute path (e.g. /usr/bin/${program})`,
    );
  }
  if (!ABSOLUTE_PATH.test(path) || path.split('/').some((p) => p === '..' || p === '.')) {
    throw fail(`resolves to "${path}", not a plain absolute path`, 'use a path like /usr/bin/NAME');
  }
  const escaped = args.map((a) => a.replace(SUDOERS_SPECIAL, (c) => `\\${c}`));
  return {
    source,
    configured,
    argv: [path, ...args],
    // Without arguments sudoers would allow any; `""` allows none.
    entry: escaped.length === 0 ? `${path} ""` : `${path} ${escaped.join(' ')}`,
  };
}

/** The sudo commands the bot may send to one node, remediation first, without duplicates. */
export function nodeSudoCommands(
  config: SudoersConfig,
  nodeName: string,
  options: SudoersOptions = {},
): SudoCommand[] {
  const node = findNode(config, nodeName);
  const paths = { ...DEFAULT_BINARY_PATHS, ...options.paths };
  const wanted: Array<{ command: string; source: string }> = [];
  for (const action of config.actions) {
    if (!actionTargetsNode(action, node)) continue;
    let steps: ReturnType<typeof expandSteps>['steps'];
    try {
      ({ steps } = expandSteps(action, node, config.redis));
    } catch (error) {
      throw new OkomeError(
        ErrorCode.SudoersUnsupportedCommand,
        `${node.name}: ${action.id}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error, userSafe: true },
      );
    }
    for (const s of steps) if (s.kind === 'ssh') wanted.push({ command: s.command, source: action.id });
  }
  for (const [purpose, service] of diagnosticPurposes(node)) {
    if (servicePurposes.has(purpose) === (service !== undefined)) {
      wanted.push({ command: bind(node.command[purpose], service), source: `diagnostics (${purpose})` });
    }
  }
  const seen = new Set<string>();
  const out: SudoCommand[] = [];
  for (const w of wanted) {
    for (const part of commandParts(w.command)) {
      if (!SUDO.test(part)) continue;
      const cmd = sudoEntry(part, w.source, node.name, paths);
      if (seen.has(cmd.entry)) continue;
      seen.add(cmd.entry);
      out.push(cmd);
    }
  }
  return out;
}

function findNode(config: SudoersConfig, name: string): ResolvedNode {
  const node = config.nodes.find((n) => n.name === name);
  if (node === undefined) {
    throw new OkomeError(
      ErrorCode.UsageInvalid,
      `no node "${name}" in ${config.file}. To resolve, use one of: ${config.nodes.map((n) => n.name).join(', ')}.`,
      { userSafe: true },
    );
  }
  return node;
}

/** Comment text: one line, and no backslash that could continue it onto the next. */
function comment(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  return text.replace(/[\u0000-\u001f\u007f\\]/g, '?');
}

/** `pi-a` → `OKOME_PI_A` (node names are lower-case letters, digits and dashes). */
export function aliasName(nodeName: string): string {
  return `OKOME_${nodeName.toUpperCase().replaceAll('-', '_')}`;
}

/** One node's section: a Cmnd_Alias of its commands, then its SSH user's rule. */
export function generateNodeSudoers(
  config: SudoersConfig,
  nodeName: string,
  options: SudoersOptions = {},
): string {
  const node = findNode(config, nodeName);
  const commands = nodeSudoCommands(config, nodeName, options);
  const user = node.ssh.user;
  const lines = [
    comment(`# ${node.name} (${node.address}): SSH user ${user}; install on ${node.name} only.`),
  ];
  if (commands.length === 0) {
    lines.push(`# No command the bot sends to ${node.name} uses sudo: nothing to allow.`);
    return `${lines.join('\n')}\n`;
  }
  for (const c of commands) lines.push(comment(`#   ${c.source}: ${c.configured}`));
  const alias = aliasName(node.name);
  lines.push(
    `Cmnd_Alias ${alias} = \\\n${commands.map((c) => `    ${c.entry}`).join(', \\\n')}`,
    // The bot runs commands without a terminal.
    `Defaults:${user} !requiretty`,
    `${user} ALL=(root) NOPASSWD: ${alias}`,
  );
  return `${lines.join('\n')}\n`;
}

/** Every node's section (or only `options.node`'s), with a header saying how to install it. */
export function generateSudoers(config: SudoersConfig, options: SudoersOptions = {}): string {
  const names =
    options.node === undefined ? config.nodes.map((n) => n.name) : [findNode(config, options.node).name];
  const header = [
    comment(`# okome-bot sudoers, generated by \`okome sudoers\` from ${config.file}.`),
    '# Do not edit: regenerate when the action catalogue or the node commands change.',
    '# Install per node: okome sudoers --node NAME > okome-bot && visudo -cf okome-bot &&',
    '#   install -m 0440 -o root -g root okome-bot /etc/sudoers.d/okome-bot',
    '',
  ].join('\n');
  return `${header}\n${names.map((n) => generateNodeSudoers(config, n, options)).join('\n')}`;
}
