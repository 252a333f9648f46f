import { runCli } from './run-cli.js';

// The real main, imported by okome.ts once the runtime is checked. With okome.ts, the only place
// that touches process: everything below takes its I/O as arguments.

const argv = process.argv.slice(2);

// The bot stops gracefully on SIGTERM/SIGINT, even one that arrives while it is starting:
// the handlers are installed before anything else and the signal is kept until serve asks.
let stopSignal: string | undefined;
const stopWaiters: Array<(signal: string) => void> = [];
if (argv.includes('serve')) {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stopSignal ??= signal;
      for (const wake of stopWaiters.splice(0)) wake(signal);
    });
  }
}
const waitForStop = (): Promise<string> =>
  stopSignal !== undefined
    ? Promise.resolve(stopSignal)
    : new Promise((resolve) => stopWaiters.push(resolve));

runCli(
  argv,
  { env: process.env, stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() },
  waitForStop,
).then(
  (code) => {
    process.exitCode = code;
    // A served bot has closed everything it opened; a straggling handle must not keep it up.
    if (argv.includes('serve')) setTimeout(() => process.exit(code), 2000).unref();
  },
  (error: unknown) => {
    process.stderr.write(
      `okome: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 70;
  },
);
