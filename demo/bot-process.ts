import type { ChildProcess } from 'node:child_process';
import type { Lab } from '../test/support/lab/lab.js';
import { LAB_ALERTMANAGER_TOKEN, LAB_KEEPALIVED_SECRET } from '../test/support/lab/topology.js';
import type { SlackEmulator } from '../test/support/slack-emulator/index.js';

const KEPT_LINES = 200;

/**
 * The built bot (`node dist/cli/okome.js serve`) as operators run it, inside the lab's bot
 * namespace, in Socket Mode against the emulator on the root side of the lab's link.
 */
export class BotProcess {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  readonly exited: Promise<number | null>;

  private constructor(child: ChildProcess, echo: ((line: string) => void) | undefined) {
    this.#child = child;
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (line === '') continue;
        this.#lines.push(line);
        if (this.#lines.length > KEPT_LINES) this.#lines.shift();
        echo?.(line);
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start(
    lab: Lab,
    emu: SlackEmulator,
    options: { echo?: (line: string) => void; timeoutMs?: number } = {},
  ): Promise<BotProcess> {
    const opened = emu.connectionsOpened;
    const child = lab.spawnInBot(
      process.execPath,
      ['dist/cli/okome.js', 'serve', '--config', lab.configPath],
      {
        env: {
          ...process.env,
          SLACK_BOT_TOKEN: 'xoxb-lab',
          SLACK_APP_TOKEN: 'xapp-lab',
          SLACK_API_URL: emu.apiUrl,
          OKOME_LOG_LEVEL: process.env.OKOME_LOG_LEVEL ?? 'warn',
          OKOME_KEEPALIVED_SECRET: LAB_KEEPALIVED_SECRET,
          OKOME_ALERTMANAGER_TOKEN: LAB_ALERTMANAGER_TOKEN,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const bot = new BotProcess(child, options.echo);
    const gone = bot.exited.then((code) => {
      throw new Error(`the bot exited (code ${code}) before it connected:\n${bot.tail()}`);
    });
    // Handled here too: the bot may exit long after start() returned or gave up.
    gone.catch(() => undefined);
    await Promise.race([
      gone,
      emu.waitFor(
        () => emu.connectionsOpened > opened,
        options.timeoutMs ?? 60_000,
        'the bot to open Socket Mode',
      ),
    ]);
    await Promise.race([gone, emu.waitForSocket(options.timeoutMs ?? 60_000)]);
    return bot;
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** The bot's last lines of output. */
  tail(lines = 30): string {
    return this.#lines.slice(-lines).join('\n');
  }

  /** SIGTERM (the bot drains and says goodbye), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.#child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    if (this.running) {
      this.#child.kill('SIGKILL');
      await this.exited;
    }
  }
}
