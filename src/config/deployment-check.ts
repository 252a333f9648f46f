import { isOkomeError } from '../errors.js';
import type { ConfigProblem, LoadedConfig } from './load-config.js';
import { alertmanagerAuthFrom, readEnvOptions, readNodeHookSecrets } from './read-env.js';

/**
 * Values the shipped example carries in place of the operator's own: a configuration still
 * holding one would fail later (a host key that never matches, a channel that does not exist).
 */
/** The example's host keys (`SHA256:REPLACEwith…`): a node whose key is not pinned yet. */
export const HOST_KEY_PLACEHOLDER = /REPLACE/i;

export const EXAMPLE_PLACEHOLDERS: ReadonlyArray<readonly [RegExp, string]> = [
  [
    HOST_KEY_PLACEHOLDER,
    "the node's pinned host key: `okome hostkeys --write` (trust on first use) or ssh-keygen -lf on the node",
  ],
  [/^C0OKOMEINC$/, "your incident channel's ID (channel details → About)"],
  [/^U0OPS00001$/, 'an approver’s member ID (profile → ⋮ → Copy member ID)'],
  [/^S0OKOMEOPS$/, "your approvers' user-group ID, or remove it"],
];

/** What the full check reads of the host, passed in so tests need no real files or users. */
export interface HostAccess {
  stat(path: string): { uid: number; mode: number } | 'missing';
  readable(path: string): boolean;
  readonly uid: number;
}

/**
 * The full `okome config check`: what a valid file still gets wrong on this host. Placeholders
 * left from the example, SSH private keys (there, readable, and as private as OpenSSH demands),
 * and the environment variables the configured mode needs.
 */
export function deploymentProblems(
  config: LoadedConfig,
  env: NodeJS.ProcessEnv,
  host: HostAccess,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  walkStrings(config, [], (path, value) => {
    for (const [pattern, what] of EXAMPLE_PLACEHOLDERS) {
      if (pattern.test(value)) {
        problems.push({
          path,
          value: JSON.stringify(value),
          message: 'still the example’s placeholder',
          fix: `write ${what}`,
        });
      }
    }
  });
  const keyPaths = new Map<string, string>();
  config.nodes.forEach((node, i) => {
    if (!keyPaths.has(node.privateKeyPath))
      keyPaths.set(node.privateKeyPath, `nodes.${i}.ssh.privateKeyPath`);
  });
  for (const [file, path] of keyPaths) problems.push(...privateKeyProblems(file, path, host));
  problems.push(...environmentProblems(config, env));
  return problems;
}

function privateKeyProblems(file: string, path: string, host: HostAccess): ConfigProblem[] {
  const value = JSON.stringify(file);
  const stat = host.stat(file);
  if (stat === 'missing') {
    return [
      {
        path,
        value,
        message: 'no such file',
        fix: `create the bot's key (ssh-keygen -t ed25519 -N '' -f ${file}) or point privateKeyPath at it`,
      },
    ];
  }
  if (!host.readable(file)) {
    return [{ path, value, message: 'not readable by this user', fix: `chown it to the user okome runs as` }];
  }
  // OpenSSH refuses a key its owner lets the group or others read (sshkey_perm_ok).
  if (stat.uid === host.uid && (stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    return [
      {
        path,
        value,
        message: `permissions ${mode} are too open: OpenSSH refuses a private key others can read`,
        fix: `chmod 600 ${file}`,
      },
    ];
  }
  return [];
}

const ENV_PATH = '(environment)';

function environmentProblems(config: LoadedConfig, env: NodeJS.ProcessEnv): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (error: unknown): void => {
    if (!isOkomeError(error)) throw error;
    problems.push({
      path: ENV_PATH,
      value: undefined,
      message: error.message.replace(/\. To resolve, .*$/s, ''),
      fix: /To resolve, (.*)$/s.exec(error.message)?.[1] ?? 'set the variable',
    });
  };
  try {
    const options = readEnvOptions(env);
    if (options.slackBotToken === undefined) {
      problems.push({
        path: ENV_PATH,
        value: undefined,
        message: 'SLACK_BOT_TOKEN is not set (okome serve needs it)',
        fix: "set it to the app's bot token (xoxb-…)",
      });
    }
    if (options.slackAppToken === undefined && options.slackSigningSecret === undefined) {
      problems.push({
        path: ENV_PATH,
        value: undefined,
        message: 'neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP mode) is set',
        fix: 'set SLACK_APP_TOKEN (xapp-…, no public URL needed) or SLACK_SIGNING_SECRET',
      });
    }
    try {
      alertmanagerAuthFrom(config.alerts.alertmanager.auth, options);
    } catch (error) {
      add(error);
    }
  } catch (error) {
    add(error);
  }
  try {
    readNodeHookSecrets(config.nodes, env);
  } catch (error) {
    add(error);
  }
  return problems;
}

function walkStrings(value: unknown, path: string[], visit: (path: string, value: string) => void): void {
  if (typeof value === 'string') visit(path.join('.'), value);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      // Resolved copies (nodes' commands, the file's own path) are not what the operator wrote.
      if (path.length === 0 && k === 'file') continue;
      walkStrings(v, [...path, k], visit);
    }
  }
}
