/**
 * `npm run demo [-- --port N] [--verbose]`: the real bot against the lab and a local Slack, in
 * the browser. Builds, brings the lab up (a crashed earlier demo or lab is removed first),
 * starts the Slack emulator where the bot's namespace reaches it, the built `okome serve` in
 * Socket Mode, and the page on 127.0.0.1; prints one line with the URL. SIGINT or SIGTERM tears
 * everything down, lab included.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import { loadConfig } from '../src/config/load-config.js';
import { USAGE_LINES } from '../src/slack/render/incident-message.js';
import { postAlert, redisDownAlert } from '../test/support/lab/alertmanager.js';
import { labAvailability } from '../test/support/lab/availability.js';
import { type Lab, REPO_ROOT, startLab } from '../test/support/lab/lab.js';
import { downLab } from '../test/support/lab/teardown.js';
import { type SlackEmulator, startSlackEmulator } from '../test/support/slack-emulator/index.js';
import { BotProcess } from './bot-process.js';
import { commandHints } from './command-hints.js';
import { FaultBoard } from './fault-board.js';
import { LabWatch } from './lab-watch.js';
import { demoPersonas, seatPersonas } from './personas.js';
import { EventHub, startDemoServer } from './server.js';

const WEB_DIR = join(REPO_ROOT, 'demo', 'web');

/** A signal arrived during start-up. */
class Interrupted extends Error {}

interface Options {
  readonly port: number;
  readonly verbose: boolean;
}

function parseArgs(argv: readonly string[]): Options | string {
  let port = 0;
  let verbose = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--verbose') verbose = true;
    else if (arg === '--port') {
      i += 1;
      const value = argv[i];
      if (value === undefined || !/^\d{1,5}$/.test(value) || Number(value) > 65_535)
        return `--port takes a port number (0-65535), got ${value ?? 'nothing'}`;
      port = Number(value);
    } else return `unknown option ${arg}. Usage: npm run demo [-- --port N] [--verbose]`;
  }
  return { port, verbose };
}

const say = (line: string) => process.stderr.write(`demo: ${line}\n`);

/** `npm run build`, with the npm that runs this script (or the one on PATH). */
function runBuild(): Promise<void> {
  const npmCli = process.env.npm_execpath ?? '';
  const viaNode = npmCli.endsWith('.js');
  const file = viaNode ? process.execPath : 'npm';
  const args = [...(viaNode ? [npmCli] : []), 'run', 'build', '--silent'];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`npm run build exited ${code}`)),
    );
  });
}

/** The page's script, bundled once at start and served from memory. */
async function bundleApp(): Promise<string> {
  const result = await build({
    entryPoints: [join(WEB_DIR, 'app.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
  });
  const out = result.outputFiles[0];
  if (out === undefined) throw new Error('esbuild produced no output for demo/web/app.ts');
  return out.text;
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseArgs(argv);
  if (typeof options === 'string') {
    say(options);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    say(
      'the demo needs root: it runs the bot against the lab, two Raspberry Pis, an orchestrator and a switch built from network namespaces (ip netns, veth, mounts, iptables).\nRun: sudo npm run demo',
    );
    return 2;
  }
  const availability = labAvailability();
  if (!availability.ok) {
    say(`the lab cannot run here: ${availability.reason}`);
    return 2;
  }

  // Everything started so far, stopped in reverse on the way out.
  let lab: Lab | undefined;
  let emu: SlackEmulator | undefined;
  let bot: BotProcess | undefined;
  let labWatch: LabWatch | undefined;
  let server: Awaited<ReturnType<typeof startDemoServer>> | undefined;
  let tearing: Promise<void> | undefined;
  const teardown = (): Promise<void> =>
    (tearing ??= (async () => {
      await server?.close().catch(() => undefined);
      await labWatch?.close().catch(() => undefined);
      await bot?.stop().catch(() => undefined);
      await emu?.close().catch(() => undefined);
      // downLab even when startLab failed half-way: it finds a lab by its names and marker.
      await (lab?.down() ?? downLab()).catch((error: unknown) => say(`teardown: ${String(error)}`));
    })());

  // A signal during start-up lets the step under way finish (a half-started lab step racing its
  // own teardown would leave things behind), then tears down.
  let signalled: string | undefined;
  let onSignal: (signal: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => {
    onSignal = resolve;
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (signalled !== undefined) {
        say(`${signal}: still tearing down, a moment…`);
        return;
      }
      signalled = signal;
      onSignal(signal);
    });
  }
  const checkpoint = () => {
    if (signalled !== undefined) throw new Interrupted(signalled);
  };

  try {
    say('building (npm run build) and bundling the page…');
    const [, appJs, indexHtml, styleCss] = await Promise.all([
      runBuild(),
      bundleApp(),
      readFile(join(WEB_DIR, 'index.html'), 'utf8'),
      readFile(join(WEB_DIR, 'style.css'), 'utf8'),
    ]);
    checkpoint();
    const stale = await downLab();
    if (stale.namespaces.length > 0 || stale.workDirs.length > 0)
      say(
        `removed what a crashed demo or lab left (${stale.namespaces.length} namespaces, ${stale.killed} processes)`,
      );
    checkpoint();
    say('bringing the lab up…');
    const labNow = await startLab();
    lab = labNow;
    checkpoint();
    const config = loadConfig(labNow.configPath);
    const channel = config.slack.incidentChannel;
    const emuNow = await startSlackEmulator({ host: labNow.hostAddress });
    emu = emuNow;
    const personas = demoPersonas(config.slack.approvers);
    seatPersonas(emuNow, personas, config.slack.approvers);
    say('starting the bot (node dist/cli/okome.js serve, Socket Mode)…');
    const botNow = await BotProcess.start(
      labNow,
      emuNow,
      options.verbose ? { echo: (l) => process.stderr.write(`bot: ${l}\n`) } : {},
    );
    bot = botNow;
    void botNow.exited.then((code) => {
      if (tearing === undefined) say(`the bot exited (code ${code}); its last lines:\n${botNow.tail()}`);
    });
    checkpoint();
    const hub = new EventHub();
    const faults = new FaultBoard(labNow, (views) => hub.send('faults', views));
    labWatch = new LabWatch(
      labNow,
      (view) => {
        faults.noteLab(view);
        hub.send('lab', view);
      },
      2000,
      (error) => {
        if (options.verbose) say(`lab reading failed: ${String(error)}`);
      },
    );
    const startsAt = new Date().toISOString();
    const serverNow = await startDemoServer(
      {
        lab: labNow,
        emu: emuNow,
        channel,
        personas,
        commands: commandHints(USAGE_LINES),
        faults,
        labWatch,
        hub,
        sendAlert: (status) => postAlert(labNow, redisDownAlert(status, startsAt)),
      },
      { port: options.port, indexHtml, appJs, styleCss },
    );
    server = serverNow;
    checkpoint();
    process.stdout.write(`okome demo: ${serverNow.url}/  (Ctrl-C stops it and tears the lab down)\n`);
    const signal = await stopped;
    say(`${signal}: tearing down…`);
    await teardown();
    say('stopped: bot, Slack emulator, page server and lab are gone');
    return 0;
  } catch (error) {
    if (error instanceof Interrupted) say(`${error.message}: tearing down…`);
    else say(`failed: ${error instanceof Error ? error.message : String(error)}\ntearing down…`);
    await teardown();
    return error instanceof Interrupted ? 0 : 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    say(`failed: ${String(error)}`);
    process.exit(1);
  },
);
