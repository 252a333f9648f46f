import { resolve } from 'node:path';
import { deploymentProblems } from '../config/deployment-check.js';
import { type NodePin, parseConfigForPinning } from '../config/host-key-pins.js';
import { ConfigError, configPath, type ResolvedNode, readConfigText } from '../config/load-config.js';
import { SshPool, sshTargets } from '../probes/ssh-pool.js';
import { type CliIo, ExitCode } from './cli-io.js';
import { localHost } from './config-check.js';
import {
  type CheckOutcome,
  configOutcome,
  environmentOutcome,
  hostKeyOutcome,
  httpOutcome,
  loginOutcome,
  slackOutcome,
  storeOutcome,
  sudoOutcome,
  tcpOutcome,
  withTimeout,
} from './doctor-checks.js';

/** A line of the report: settled with an outcome, or not tried because an earlier check failed. */
interface Line {
  readonly name: string;
  result: CheckOutcome | { readonly skipped: string } | undefined;
}

/** Slack, /healthz and the store get this long; SSH checks their configured timeouts. */
const LOCAL_CHECK_MS = 2000;
/** Headroom over a check's own timeout before doctor gives up on it. */
const GRACE_MS = 500;

/**
 * `okome doctor`: every check an operator needs when something is off, in parallel, each bounded:
 * the configuration, the environment and Slack tokens, per node TCP → host key → SSH login → sudo,
 * the store, the HTTP listener. One line each (✓, ✗ with what to try, – not tried); progress on
 * stderr when it is a terminal. Exit 0 all passed, 1 any did not, 2 the configuration cannot be read.
 */
export async function doctorCommand(options: { config: string | undefined }, io: CliIo): Promise<number> {
  const started = performance.now();
  const file = resolve(io.cwd, configPath(options.config, io.env));
  let loaded: ReturnType<typeof parseConfigForPinning>;
  try {
    loaded = parseConfigForPinning(readConfigText(file), file);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const first = error.problems[0];
    io.stdout.write(
      `✗ config: ${file}: ${error.problems.length} problem(s)${first === undefined ? '' : `, first ${first.path || '(file)'}: ${first.message}`}  try: okome config check ${file}\n`,
    );
    return ExitCode.ConfigError;
  }
  const { config, pins } = loaded;
  const t = config.timeouts;
  // Host keys have a line per node of their own.
  const problems = deploymentProblems(config, io.env, localHost).filter(
    (p) => !/^nodes\.\d+\.ssh\.hostKey$/.test(p.path),
  );
  // Slack's variables have a line of their own: the environment is judged without them.
  const withoutSlack = Object.fromEntries(Object.entries(io.env).filter(([k]) => !k.startsWith('SLACK_')));
  const envProblems = deploymentProblems(config, withoutSlack, localHost);

  const lines: Line[] = [];
  const line = (name: string): Line => {
    const l: Line = { name, result: undefined };
    lines.push(l);
    return l;
  };
  const progress = createProgress(io, lines);
  const settle = async (l: Line, work: () => Promise<CheckOutcome>, budgetMs: number): Promise<boolean> => {
    l.result = await withTimeout(
      work(),
      budgetMs,
      `the check ${l.name} did not finish: run okome doctor again`,
    );
    progress();
    return l.result.ok;
  };

  const shell = new SshPool(sshTargets(config.nodes), {
    connectTimeoutMs: t.sshConnectMs,
    maxOutputBytes: t.maxOutputBytes,
    keepaliveIntervalMs: 0,
  });
  const configLine = line('config');
  const envLine = line('environment');
  const slackLine = line('slack');
  const nodeChains = config.nodes.map((node, index) => {
    const pin = pins[index] ?? { index, state: { kind: 'missing' } };
    return nodeChain(node, pin, {
      tcp: line(`${node.name} tcp`),
      hostKey: line(`${node.name} host key`),
      login: line(`${node.name} ssh login`),
      sudo: line(`${node.name} sudo`),
    });
  });
  const storeLine = line('store');
  const httpLine = line('http');
  progress();

  async function nodeChain(
    node: ResolvedNode,
    pin: NodePin,
    l: { tcp: Line; hostKey: Line; login: Line; sudo: Line },
  ): Promise<void> {
    const skip = (from: Line[], why: string): void => {
      for (const x of from) x.result = { skipped: why };
      progress();
    };
    if (!(await settle(l.tcp, () => tcpOutcome(node, t.sshConnectMs), t.sshConnectMs + GRACE_MS))) {
      skip([l.hostKey, l.login, l.sudo], 'not reachable');
      return;
    }
    const keyOk = await settle(
      l.hostKey,
      () => hostKeyOutcome(node, pin, t.sshConnectMs, config.file),
      t.sshConnectMs + GRACE_MS,
    );
    if (!keyOk) {
      skip([l.login, l.sudo], 'the host key is not verified');
      return;
    }
    const execMs = t.sshConnectMs + t.sshExecMs;
    if (!(await settle(l.login, () => loginOutcome(node, shell, execMs), execMs + GRACE_MS))) {
      skip([l.sudo], 'no SSH login');
      return;
    }
    // Two round trips: sudo -n -l for the catalogue, then one read-only command.
    await settle(l.sudo, () => sudoOutcome(config, node, shell, t.sshExecMs), 2 * t.sshExecMs + GRACE_MS);
  }

  try {
    await Promise.all([
      settle(configLine, async () => configOutcome(config, problems), LOCAL_CHECK_MS),
      settle(envLine, async () => environmentOutcome(envProblems), LOCAL_CHECK_MS),
      settle(slackLine, () => slackOutcome(io.env, LOCAL_CHECK_MS), LOCAL_CHECK_MS + GRACE_MS),
      ...nodeChains,
      settle(storeLine, () => storeOutcome(config, io.env, LOCAL_CHECK_MS), LOCAL_CHECK_MS + GRACE_MS),
      settle(httpLine, () => httpOutcome(config, LOCAL_CHECK_MS), LOCAL_CHECK_MS + GRACE_MS),
    ]);
  } finally {
    await shell.close();
    progress.done();
  }

  const width = Math.max(...lines.map((l) => l.name.length));
  let passed = 0;
  for (const l of lines) {
    const r = l.result ?? { skipped: 'did not run' };
    const name = l.name.padEnd(width);
    if ('skipped' in r) io.stdout.write(`– ${name}  not tried: ${r.skipped}\n`);
    else if (r.ok) {
      passed++;
      io.stdout.write(`✓ ${name}  ${r.detail}\n`);
    } else io.stdout.write(`✗ ${name}  ${r.detail}  try: ${r.fix}\n`);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  io.stdout.write(`${passed} of ${lines.length} checks passed (${seconds} s)\n`);
  return passed === lines.length ? ExitCode.Ok : ExitCode.Incident;
}

/** Which checks are still running, rewritten in place on a terminal's stderr; nothing otherwise. */
function createProgress(io: CliIo, lines: readonly Line[]): (() => void) & { done(): void } {
  const tty = io.stderr.isTTY === true;
  const update = (): void => {
    if (!tty) return;
    const running = lines.filter((l) => l.result === undefined).map((l) => l.name);
    const finished = lines.length - running.length;
    const shown = running.slice(0, 4).join(', ') + (running.length > 4 ? `, +${running.length - 4}` : '');
    io.stderr.write(
      `\r\x1b[Kokome doctor: ${finished}/${lines.length} done${running.length > 0 ? `; running: ${shown}` : ''}`,
    );
  };
  return Object.assign(update, {
    done: (): void => {
      if (tty) io.stderr.write('\r\x1b[K');
    },
  });
}
