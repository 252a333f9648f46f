import { closeSync, openSync, readSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { type Document, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { closestMatch } from '../domain/suggest.js';
import { ErrorCode, OkomeError } from '../errors.js';
import { knownKeysAt } from './json-schema.js';
import { plainMessage } from './plain-words.js';
import {
  type CommandPurpose,
  type Config,
  configSchema,
  defaultCommands,
  type NodeConfig,
} from './schema.js';

/** One thing wrong with a configuration, as `okome config check` prints it. */
export interface ConfigProblem {
  /** Dotted key path, e.g. `nodes.1.ssh.hostKey`; empty for the whole file. */
  readonly path: string;
  /** The value seen, rendered short; undefined when the key is missing. */
  readonly value: string | undefined;
  readonly message: string;
  readonly fix: string;
}

export class ConfigError extends OkomeError {
  readonly problems: readonly ConfigProblem[];
  readonly file: string;
  constructor(file: string, problems: readonly ConfigProblem[]) {
    super(ErrorCode.ConfigInvalid, `${file}: ${problems.length} configuration problem(s)`, {
      userSafe: true,
    });
    this.problems = problems;
    this.file = file;
  }
}

/** A node with its commands resolved: defaults, then the file's global overrides, then the node's. */
export interface ResolvedNode extends NodeConfig {
  readonly command: Readonly<Record<CommandPurpose, string>>;
  readonly privateKeyPath: string;
}

export interface LoadedConfig extends Omit<Config, 'nodes'> {
  readonly nodes: readonly ResolvedNode[];
  readonly file: string;
}

// Key names and values that look like credentials: those come only from the environment.
const SECRET_KEY = /(token|secret|password|passphrase|private_?key)$/i;
const SECRET_KEY_ALLOWED = new Set(['privateKeyPath']);
const SECRET_VALUE = /^(xox[abpre]-|xapp-)|-----BEGIN [A-Z ]*PRIVATE KEY-----/;

// Fixes by key-path pattern (`*` = one segment); the first match wins.
const FIXES: ReadonlyArray<readonly [RegExp, string]> = [
  [
    /^nodes\.\*\.ssh\.hostKey$/,
    "write the node's pinned key as printed by `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`, e.g. SHA256:AbC…(43 chars)",
  ],
  [/^nodes\.\*\.name$/, 'give every node a unique name of lower-case letters, digits and dashes, e.g. pi-a'],
  [
    /^nodes\.\*\.address$|^redis\.host$|^orchestrator\.gpuHost$/,
    "write the node's own IPv4 address or DNS name, e.g. 192.168.86.20",
  ],
  [/^vip\.address$/, 'write the keepalived virtual address, e.g. 192.168.86.18'],
  [
    /^orchestrator\.baseUrl$/,
    'write the orchestrator URL with scheme and port, e.g. http://192.168.86.25:8000',
  ],
  [/^nodes\.\*\.services/, 'list systemd unit names the node runs, e.g. [nginx, keepalived]'],
  [/^nodes\.\*\.roles/, 'give each node at least one of: frontend, backend, spare'],
  [/^actions\.\*\.targets/, 'name nodes listed under `nodes:` or roles that some node has'],
  [
    /^actions\.\*\.steps/,
    'use a purpose from `commands:` (with `service:` for serviceState/serviceRestart/serviceStop/serviceStart) or `redis: flushdb`',
  ],
  [/^actions\.\*\.id$/, 'give every action a unique id of lower-case letters, digits and dashes'],
  [
    /^slack\.incidentChannel$|^slack\.allowedChannels/,
    "use the channel's ID (channel details → About), not its name",
  ],
  [/^slack\.approvers\.users/, "use the user's member ID (profile → ⋮ → Copy member ID)"],
  [/^slack\.approvers\.groups/, "use the user group's ID (S…), from the group's page or usergroups.list"],
  [/^commands\./, 'write one shell command on a single line; `{service}` is the only placeholder'],
];

function fixFor(path: string, issue: z.core.$ZodIssue, input?: unknown): string {
  const pattern = path.replace(/\.\d+(?=\.|$)/g, '.*');
  for (const [re, fix] of FIXES) if (re.test(pattern)) return fix;
  switch (issue.code) {
    case 'unrecognized_keys':
      return 'remove or correct this key: see config/okome.example.yml for the keys allowed here';
    case 'invalid_type':
      return input === undefined ? 'add this key: it is required' : `write a value of type ${issue.expected}`;
    case 'too_small':
      return `give at least ${String(issue.minimum)}`;
    case 'too_big':
      return `give at most ${String(issue.maximum)}`;
    case 'invalid_value':
      return `use one of: ${issue.values.map(String).join(', ')}`;
    default:
      return 'see config/okome.example.yml for a valid example';
  }
}

function render(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && SECRET_VALUE.test(value)) return '(hidden)';
  const text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let here = root;
  for (const key of path) {
    if (here === null || typeof here !== 'object') return undefined;
    here = (here as Record<PropertyKey, unknown>)[key];
  }
  return here;
}

function findSecrets(value: unknown, path: string[], out: ConfigProblem[]): void {
  if (typeof value === 'string') {
    const key = path.at(-1) ?? '';
    if (SECRET_VALUE.test(value) || (SECRET_KEY.test(key) && !SECRET_KEY_ALLOWED.has(key))) {
      out.push({
        path: path.join('.'),
        value: '(hidden)',
        message: 'a secret is written in the configuration file',
        fix: 'delete it from the file and set it in the environment (SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_SIGNING_SECRET, REDIS_PASSWORD); keys are read from privateKeyPath',
      });
    }
    return;
  }
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) findSecrets(v, [...path, k], out);
  }
}

/**
 * Bounds on what a configuration file may be. A real one is a few KiB and a few levels deep; the
 * bounds turn a hostile or corrupt file (an alias bomb, a cycle, megabytes of brackets, a device
 * file) into a ConfigError instead of a stack overflow, an endless read or an out-of-memory.
 */
export const CONFIG_LIMITS = {
  /** Bytes read from the file; a longer file is refused without parsing it. */
  maxBytes: 256 * 1024,
  /** Nesting of mappings and sequences in the parsed document. */
  maxDepth: 32,
  /** yaml's guard against alias expansion (billion laughs); yaml's own default. */
  maxAliasCount: 100,
} as const;

function fileProblem(message: string, fix: string): ConfigProblem {
  return { path: '', value: undefined, message, fix };
}

function tooDeep(): ConfigProblem {
  return fileProblem(
    `the YAML nests too deeply (more than ${CONFIG_LIMITS.maxDepth} levels)`,
    'a configuration needs a few levels: compare with config/okome.example.yml',
  );
}

/** Parses YAML text into a validated, frozen configuration, or throws ConfigError with every problem. */
export function parseConfig(text: string, file: string): LoadedConfig {
  try {
    return parseUnguarded(text, file);
  } catch (error) {
    if (error instanceof OkomeError) throw error;
    if (error instanceof RangeError && /call stack/i.test(error.message)) {
      throw new ConfigError(file, [tooDeep()]);
    }
    // Whatever a parser or validator throws on some input is still a problem with the file.
    throw new ConfigError(file, [
      fileProblem(
        `cannot be read as a configuration: ${error instanceof Error ? error.message : String(error)}`,
        'compare the file with config/okome.example.yml',
      ),
    ]);
  }
}

function parseUnguarded(text: string, file: string): LoadedConfig {
  if (text.includes('\u0000')) {
    throw new ConfigError(file, [
      fileProblem('not a text file (it contains NUL bytes)', 'point --config at the YAML configuration'),
    ]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    prettyErrors: false,
    lineCounter: lines,
    // yaml's own duplicate-key check compares each key with every earlier one: a megabyte of
    // keys takes a minute. duplicateKeys() below does it with a set.
    uniqueKeys: false,
    // yaml's warnings (odd keys, unknown tags) would go to the process's stderr; the schema judges.
    logLevel: 'error',
  });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      // Garbage makes thousands of syntax errors; the first few say what is wrong.
      doc.errors.slice(0, 10).map((e) => {
        // yaml turns its own stack overflow on deep nesting into an error like any other.
        if (/call stack|stack overflow/i.test(e.message)) return tooDeep();
        const at = lines.linePos(e.pos[0]);
        return fileProblem(
          `YAML syntax at line ${at.line}, column ${at.col}: ${e.message.split('\n')[0] ?? e.code}`,
          'correct the YAML there',
        );
      }),
    );
  }
  const duplicates = duplicateKeys(doc, lines);
  if (duplicates.length > 0) throw new ConfigError(file, duplicates);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: CONFIG_LIMITS.maxAliasCount });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ConfigError(file, [
      /excessive alias/i.test(message)
        ? fileProblem(
            `its YAML aliases (*name) expand too much (more than ${CONFIG_LIMITS.maxAliasCount} values)`,
            'write the repeated values out, or use fewer aliases',
          )
        : fileProblem(`a YAML alias cannot be resolved: ${message}`, 'define each &anchor before its *alias'),
    ]);
  }
  const shapeProblem = checkShape(raw);
  if (shapeProblem !== undefined) throw new ConfigError(file, [shapeProblem]);
  const problems: ConfigProblem[] = [];
  findSecrets(raw, [], problems);
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const secretPaths = new Set(problems.map((p) => p.path));
    for (const issue of result.error.issues) {
      const path = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        // One problem per unknown key, pointing at the key itself rather than its parent.
        for (const key of issue.keys) {
          const keyPath = path === '' ? key : `${path}.${key}`;
          if (secretPaths.has(keyPath)) continue;
          const meant = closestMatch(key, knownKeysAt(issue.path));
          problems.push({
            path: keyPath,
            value: render(valueAt(raw, [...issue.path, key])),
            message: meant === undefined ? 'unknown key' : `unknown key. Did you mean "${meant}"?`,
            fix: meant === undefined ? fixFor(keyPath, issue) : `rename it to ${meant}`,
          });
        }
        continue;
      }
      const input = issue.input !== undefined ? issue.input : valueAt(raw, issue.path);
      problems.push({
        path,
        value: render(input),
        message: plainMessage(issue, input),
        fix: fixFor(path, issue, input),
      });
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(file, problems);
  return resolveConfig(result.data, file);
}

/** Keys written twice in one mapping (the later would silently win), by line. */
function duplicateKeys(doc: Document, lines: LineCounter): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const { key } of map.items) {
        if (!isScalar(key)) continue;
        const id = `${typeof key.value}:${String(key.value)}`;
        if (!seen.has(id)) {
          seen.add(id);
          continue;
        }
        const line = key.range == null ? '' : ` (line ${lines.linePos(key.range[0]).line})`;
        problems.push(
          fileProblem(
            `the key ${render(key.value) ?? '?'} is written twice in one mapping${line}`,
            'keep one of them',
          ),
        );
        if (problems.length >= 10) return visit.BREAK;
      }
      return undefined;
    },
  });
  return problems;
}

/**
 * A cycle (`a: &x [*x]`) or a deep nest in the parsed value; walked without recursion so the
 * check itself cannot overflow. The recursive walks after it (secrets, schema) are then safe.
 */
function checkShape(root: unknown): ConfigProblem | undefined {
  const stack: Array<{ value: unknown; depth: number; ancestors: ReadonlySet<object> }> = [
    { value: root, depth: 0, ancestors: new Set() },
  ];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value, depth, ancestors } = item;
    if (value === null || typeof value !== 'object') continue;
    if (ancestors.has(value)) {
      return fileProblem(
        'a YAML alias refers to a value that contains it (a cycle)',
        'remove the alias (*name) that points back at its own anchor (&name)',
      );
    }
    if (depth >= CONFIG_LIMITS.maxDepth) return tooDeep();
    const inside = new Set(ancestors).add(value);
    for (const child of Object.values(value))
      stack.push({ value: child, depth: depth + 1, ancestors: inside });
  }
  return undefined;
}

function resolveConfig(config: Config, file: string): LoadedConfig {
  const base = dirname(resolve(file));
  const nodes = config.nodes.map(
    (node): ResolvedNode => ({
      ...node,
      privateKeyPath: isAbsolute(node.ssh.privateKeyPath)
        ? node.ssh.privateKeyPath
        : resolve(base, node.ssh.privateKeyPath),
      command: Object.freeze({
        ...defaultCommands,
        ...stripUndefined(config.commands),
        ...stripUndefined(node.commands ?? {}),
      }),
    }),
  );
  return deepFreeze({ ...config, nodes, file: resolve(file) });
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Reads and parses a configuration file; every failure is an OkomeError (ConfigError for the content). */
export function loadConfig(file: string): LoadedConfig {
  return parseConfig(readConfigText(file), file);
}

/** The file's text, read up to the size limit (a FIFO or /dev/zero ends there too). */
export function readConfigText(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buffer = Buffer.alloc(CONFIG_LIMITS.maxBytes + 1);
    let length = 0;
    for (let n = -1; n !== 0 && length < buffer.length; length += n) {
      n = readSync(fd, buffer, length, buffer.length - length, null);
    }
    if (length > CONFIG_LIMITS.maxBytes) {
      throw new ConfigError(file, [
        fileProblem(
          `the file is larger than ${CONFIG_LIMITS.maxBytes / 1024} KiB`,
          'point --config at the YAML configuration (a real one is a few KiB)',
        ),
      ]);
    }
    return buffer.toString('utf8', 0, length);
  } catch (error) {
    if (error instanceof OkomeError) throw error;
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    // The path was given (--config or OKOME_CONFIG): say how to make the file, not to pass it.
    throw new OkomeError(
      missing ? ErrorCode.ConfigNotFound : ErrorCode.ConfigUnreadable,
      missing
        ? `no configuration at ${file}. To resolve, copy config/okome.example.yml there and edit it (README: "From a clone to a served bot"), or point --config or OKOME_CONFIG at your file.`
        : `cannot read configuration ${file}: ${(error as Error).message}. To resolve, make it readable by this user, or point --config or OKOME_CONFIG at another file.`,
      {
        cause: error,
        userSafe: true,
      },
    );
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Where the configuration is: `--config` wins over OKOME_CONFIG. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const path = flag ?? env.OKOME_CONFIG;
  if (path === undefined || path === '') {
    throw new OkomeError(
      ErrorCode.ConfigNotFound,
      'no configuration given. To resolve, pass --config FILE or set OKOME_CONFIG=FILE (see config/okome.example.yml).',
      {
        userSafe: true,
      },
    );
  }
  return path;
}

/** The command a node runs for a purpose, with `{service}` bound to one of its own services. */
export function nodeCommand(node: ResolvedNode, purpose: CommandPurpose, service?: string): string {
  const template = node.command[purpose];
  if (!template.includes('{service}')) return template;
  if (service === undefined || !node.services.includes(service)) {
    throw new OkomeError(ErrorCode.Internal, `node ${node.name} does not run service ${String(service)}`);
  }
  return template.replaceAll('{service}', service);
}
