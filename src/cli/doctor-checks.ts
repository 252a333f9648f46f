import { accessSync, constants, existsSync } from 'node:fs';
import { get } from 'node:http';
import { createServer, Socket } from 'node:net';
import { dirname } from 'node:path';
import type { NodePin } from '../config/host-key-pins.js';
import type { ConfigProblem, LoadedConfig, ResolvedNode } from '../config/load-config.js';
import { readEnvOptions } from '../config/read-env.js';
import { isOkomeError } from '../errors.js';
import { describeNetworkError } from '../probes/deadline.js';
import type { SshPool } from '../probes/ssh-pool.js';
import { nodeSudoCommands } from '../remediation/sudoers.js';
import { MIGRATIONS } from '../store/migrations.js';
import { storeTarget } from '../store/open-store.js';
import { healthzUrl } from './healthcheck-command.js';
import { describeOffered, hostKeyFile, hostKeyVerdict, mismatchWarning } from './host-key-verdict.js';

/** One doctor line: passed with what was seen, or failed with what to try. */
export type CheckOutcome =
  | { readonly ok: true; readonly detail: string }
  | { readonly ok: false; readonly detail: string; readonly fix: string };

const pass = (detail: string): CheckOutcome => ({ ok: true, detail });
const fail = (detail: string, fix: string): CheckOutcome => ({ ok: false, detail, fix });

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Settles within `ms` whatever `work` does; a late result is dropped. */
export function withTimeout(work: Promise<CheckOutcome>, ms: number, what: string): Promise<CheckOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<CheckOutcome>((resolve) => {
    timer = setTimeout(() => resolve(fail(`no answer within ${ms} ms`, what)), ms);
  });
  return Promise.race([work.catch((error: unknown) => fail(message(error), what)), late]).finally(() =>
    clearTimeout(timer),
  );
}

const ENVIRONMENT = '(environment)';

/** The file and this host (placeholders, SSH keys): the full `okome config check` without the environment. */
export function configOutcome(config: LoadedConfig, problems: readonly ConfigProblem[]): CheckOutcome {
  const own = problems.filter((p) => p.path !== ENVIRONMENT);
  if (own.length === 0) {
    return pass(
      `${config.file}: ${config.nodes.length} node(s), VIP ${config.vip.address}, ${config.actions.length} action(s)`,
    );
  }
  const first = own[0] as ConfigProblem;
  return fail(
    `${own.length} problem(s), first ${first.path}: ${first.message}`,
    `${first.fix}; every problem: okome config check ${config.file}`,
  );
}

/** Environment variables other than Slack's (those have a line of their own). */
export function environmentOutcome(problems: readonly ConfigProblem[]): CheckOutcome {
  const own = problems.filter((p) => p.path === ENVIRONMENT && !/SLACK_/.test(p.message));
  if (own.length === 0) return pass('the variables the configuration needs are set');
  return fail(own.map((p) => p.message).join('; '), (own[0] as ConfigProblem).fix);
}

function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Slack's tokens: present, well-formed, a mode chosen. Slack itself is asked (`auth.test`) only
 * when SLACK_API_URL points at this machine; doctor sends nothing off it.
 */
export async function slackOutcome(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CheckOutcome> {
  const slackOnly = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('SLACK_')));
  let options: ReturnType<typeof readEnvOptions>;
  try {
    options = readEnvOptions(slackOnly);
  } catch (error) {
    return fail(message(error).replace(/\. To resolve, .*$/s, ''), 'correct or unset the variable named');
  }
  if (options.slackBotToken === undefined) {
    return fail(
      'SLACK_BOT_TOKEN is not set',
      "set it to the Slack app's bot token (xoxb-…, OAuth & Permissions)",
    );
  }
  const mode =
    options.slackAppToken !== undefined
      ? 'Socket Mode (SLACK_APP_TOKEN)'
      : options.slackSigningSecret !== undefined
        ? 'HTTP mode (SLACK_SIGNING_SECRET)'
        : undefined;
  if (mode === undefined) {
    return fail(
      'neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is set',
      'set SLACK_APP_TOKEN (xapp-…, Socket Mode: no public URL) or SLACK_SIGNING_SECRET (HTTP mode)',
    );
  }
  const apiUrl = options.slackApiUrl;
  if (apiUrl === undefined || !isLoopbackUrl(apiUrl)) {
    return pass(`tokens well-formed, ${mode}; not sent to Slack (okome serve checks them at start-up)`);
  }
  const url = `${apiUrl.replace(/\/?$/, '/')}auth.test`;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.slackBotToken}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await res.json()) as { ok?: boolean; error?: string; user_id?: string; team_id?: string };
    if (body.ok === true)
      return pass(`${mode}; auth.test at ${apiUrl}: bot ${body.user_id} in team ${body.team_id}`);
    return fail(
      `auth.test at ${apiUrl} refused the bot token: ${body.error ?? `HTTP ${res.status}`}`,
      'reinstall the Slack app to the workspace and copy the new bot token',
    );
  } catch (error) {
    return fail(
      `auth.test at ${apiUrl}: ${describeNetworkError((error as Error).cause ?? error)}`,
      'start the Slack API SLACK_API_URL names, or unset it',
    );
  }
}

/** A TCP connection to the node's SSH port. */
export function tcpOutcome(node: ResolvedNode, timeoutMs: number): Promise<CheckOutcome> {
  const where = `${node.address}:${node.ssh.port}`;
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (outcome: CheckOutcome): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const unreachable = (why: string): CheckOutcome =>
      fail(
        `${where}: ${why}`,
        `is ${node.name} powered and on the network (ping ${node.address})? is sshd running there (systemctl status ssh)? are nodes[].address and ssh.port right?`,
      );
    const timer = setTimeout(() => done(unreachable(`no connection within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () =>
      done(pass(`${where} accepts connections (${Math.round(performance.now() - started)} ms)`)),
    );
    socket.once('error', (error) => done(unreachable(describeNetworkError(error))));
    socket.connect({ host: node.address, port: node.ssh.port });
  });
}

/** The key the node's sshd proves, against its pin. */
export async function hostKeyOutcome(
  node: ResolvedNode,
  pin: NodePin,
  timeoutMs: number,
  configFile: string,
): Promise<CheckOutcome> {
  const verdict = await hostKeyVerdict(node, pin.state, { timeoutMs });
  switch (verdict.kind) {
    case 'match':
      return pass(`${describeOffered(verdict.offered)} matches the pin`);
    case 'mismatch':
      return fail(
        `MISMATCH: offered ${verdict.offered.fingerprint}, pinned ${verdict.pinned}`,
        mismatchWarning(node, pin.index, verdict.offered),
      );
    case 'unpinned':
      return fail(
        `not pinned; it offers ${describeOffered(verdict.offered)}`,
        `check it on ${node.name} (ssh-keygen -lf ${hostKeyFile(verdict.offered)}), then okome hostkeys --write --config ${configFile} (trust on first use)`,
      );
    case 'unreachable':
      return fail(
        `no key exchange: ${verdict.reason}`,
        `is it sshd that listens on ${node.address}:${node.ssh.port}?`,
      );
  }
}

/** Logs in with the bot's key through the pool okome serve uses (which verifies the pin again). */
export async function loginOutcome(
  node: ResolvedNode,
  shell: SshPool,
  timeoutMs: number,
): Promise<CheckOutcome> {
  try {
    const result = await shell.exec(node.name, 'id -un', { timeoutMs });
    if (result.exitCode !== 0)
      return fail(`logged in, but id -un exited ${result.exitCode}`, 'check the account on the node');
    return pass(`logged in as ${result.stdout.trim()} with ${node.privateKeyPath}`);
  } catch (error) {
    const text = message(error).replace(/^ssh \S+ \([^)]*\): /, '');
    return fail(
      text,
      /authentication/.test(text)
        ? `authorize the bot's key on ${node.name}: ssh-copy-id -i ${node.privateKeyPath}.pub ${node.ssh.user}@${node.address} (or append the .pub to ~${node.ssh.user}/.ssh/authorized_keys)`
        : `try ssh -i ${node.privateKeyPath} -p ${node.ssh.port} ${node.ssh.user}@${node.address} true`,
    );
  }
}

/**
 * `sudo -n -l CMD` for every catalogue command the node may be sent with sudo (allowed without a
 * password, nothing run), then one read-only diagnostic command really run with `sudo -n`.
 */
export async function sudoOutcome(
  config: LoadedConfig,
  node: ResolvedNode,
  shell: SshPool,
  timeoutMs: number,
): Promise<CheckOutcome> {
  const install = `okome sudoers --node ${node.name} --config ${config.file} > okome-bot, copy it to ${node.name}, and there: visudo -cf okome-bot && sudo install -m 0440 -o root -g root okome-bot /etc/sudoers.d/okome-bot`;
  let commands: ReturnType<typeof nodeSudoCommands>;
  try {
    commands = nodeSudoCommands(config, node.name);
  } catch (error) {
    return fail(
      message(error).replace(/\. To resolve, .*$/s, ''),
      /To resolve, (.*)$/s.exec(message(error))?.[1] ?? 'correct the command',
    );
  }
  if (commands.length === 0) return pass('no catalogue command uses sudo on this node');
  // Every word passed sudoEntry's plain-word check: joined with spaces, the shell sees them as written.
  const script = commands
    .map(
      (c, i) => `if sudo -n -l ${c.argv.join(' ')} >/dev/null 2>&1; then echo ok ${i}; else echo no ${i}; fi`,
    )
    .join('; ');
  const listed = await shell.exec(node.name, script, { timeoutMs });
  const refused = commands.filter((_, i) => !new RegExp(`^ok ${i}$`, 'm').test(listed.stdout));
  if (refused.length > 0) {
    return fail(
      `sudo -n refuses ${refused.length} of ${commands.length} catalogue command(s): ${refused
        .slice(0, 3)
        .map((c) => c.argv.join(' '))
        .join(', ')}${refused.length > 3 ? `, +${refused.length - 3} more` : ''}`,
      install,
    );
  }
  const harmless = commands.find((c) => c.source.startsWith('diagnostics'));
  if (harmless === undefined) return pass(`sudo -n -l allows all ${commands.length} catalogue command(s)`);
  const ran = await shell.exec(node.name, `sudo -n ${harmless.argv.join(' ')} >/dev/null`, { timeoutMs });
  if (ran.exitCode !== 0) {
    return fail(
      `sudo -n ${harmless.argv.join(' ')} (read-only) exited ${ran.exitCode}: ${ran.stderr.trim().split('\n')[0] ?? ''}`,
      `is ${harmless.argv[0]} installed on ${node.name}? ${install}`,
    );
  }
  return pass(
    `sudo -n -l allows all ${commands.length} catalogue command(s); ran sudo -n ${harmless.argv.join(' ')} (read-only): exit 0`,
  );
}

/** The store opens read-only at this okome's schema version (or does not exist yet, where it can be created). */
export async function storeOutcome(
  config: LoadedConfig,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<CheckOutcome> {
  let target: ReturnType<typeof storeTarget>;
  try {
    target = storeTarget(config.store, {
      configFile: config.file,
      databaseUrl: readEnvOptions(env).databaseUrl,
    });
  } catch (error) {
    return fail(
      message(error).replace(/\. To resolve, .*$/s, ''),
      /To resolve, (.*)$/s.exec(message(error))?.[1] ?? 'see the error',
    );
  }
  if (config.store.kind === 'sqlite' && !existsSync(target.where)) {
    const folder = dirname(target.where);
    try {
      accessSync(folder, constants.W_OK);
    } catch {
      return fail(
        `${target.where} does not exist and ${folder} is not writable`,
        `create ${folder}, owned by the user okome serve runs as`,
      );
    }
    return pass(
      `${target.where} not created yet; okome serve creates it (schema version ${MIGRATIONS.length})`,
    );
  }
  try {
    // Read-only: beside a serving bot, and never migrates: a version other than ours is an error.
    const store = await target.open({ readOnly: true, connectTimeoutMs: timeoutMs });
    await store.close();
    return pass(`${target.where} opens, schema version ${MIGRATIONS.length} (current)`);
  } catch (error) {
    const text = message(error);
    return fail(
      text,
      isOkomeError(error) && /schema version/.test(text)
        ? 'start okome serve of this version once (it migrates at start; back the store up first)'
        : 'check store.path (or OKOME_DATABASE_URL) and its permissions',
    );
  }
}

/** The HTTP listener: the bot answering /healthz, or the port free for it. */
export async function httpOutcome(config: LoadedConfig, timeoutMs: number): Promise<CheckOutcome> {
  const { port, host } = config.http;
  if (port === 0) return pass('http.port 0: a free port is chosen at start');
  const url = healthzUrl(config.http);
  try {
    const res = await getOnce(url, timeoutMs);
    const body = res.body;
    if (res.status === 200) return pass(`the bot is running: ${url} ${res.status}`);
    if (res.status === 503) {
      return fail(
        `the bot runs but is not healthy: ${url} 503 ${body.slice(0, 200)}`,
        'see its logs (journalctl -u okome-bot)',
      );
    }
    return fail(
      `another program answers HTTP on port ${port}: ${url} ${res.status}`,
      'stop it or change http.port',
    );
  } catch {
    // Nothing answers HTTP there: is the port free for the bot?
  }
  const bindHost = host ?? '0.0.0.0';
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      resolve(
        error.code === 'EADDRINUSE'
          ? fail(
              `port ${port} on ${bindHost} is taken by another program (no /healthz there)`,
              `stop it (ss -ltnp 'sport = :${port}') or change http.port`,
            )
          : fail(
              `cannot listen on ${bindHost}:${port}: ${error.code ?? error.message}`,
              'change http.host or http.port',
            ),
      ),
    );
    server.listen({ port, host: bindHost, exclusive: true }, () =>
      server.close(() => resolve(pass(`port ${port} on ${bindHost} is free (the bot is not running here)`))),
    );
  });
}

/** One GET on a connection of its own, closed after: nothing pooled outlives the report. */
function getOnce(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 4096) chunks.push(chunk);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
