import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LoadedConfig } from './config/load-config.js';
import { createDiagnostics, type Diagnostics } from './diagnostics/diagnose.js';
import { parseCommand } from './domain/command.js';
import type { Logger } from './logger.js';
import { createOutbox } from './outbox/outbox.js';
import type { Probes } from './probes/create-probes.js';
import type { CommandInput, Reply, SlackHandlers, SlackMode } from './slack/bolt-app.js';
import { type BoltHandle, createSlackGateway, startBolt } from './slack/bolt-runtime.js';
import { StatusFlow } from './slack/flows/status-flow.js';
import { renderHelp, renderRunbookCard, renderUsage } from './slack/render/incident-message.js';
import type { Store } from './store/store-port.js';

/**
 * createApp(deps): wires the use cases to Slack. No environment, no process: main (the serve
 * command) reads those and passes them in, so tests build the same app around an emulator.
 */
export interface AppDeps {
  readonly config: LoadedConfig;
  readonly slack: SlackMode;
  readonly slackApiUrl: string | undefined;
  readonly store: Store;
  readonly probes: Probes;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Cold-start interval between Redis samples (tests shorten it). */
  readonly redisSampleIntervalMs?: number;
}

export interface RunningApp {
  readonly diagnostics: Diagnostics;
  /** HTTP mode: the receiver's port; Socket Mode: the health server's port. */
  readonly httpPort: number | undefined;
  /** Stops taking work, finishes what is in flight (bounded), delivers what it can, closes. */
  stop(options?: { graceMs?: number }): Promise<void>;
}

const PRUNE_EVERY_MS = 60 * 60_000;
const SEEN_TTL_MS = 24 * 60 * 60_000;

export async function createApp(deps: AppDeps): Promise<RunningApp> {
  const { config, store, logger } = deps;
  const now = deps.now ?? Date.now;
  const log = logger.child({ component: 'app' });
  const diagnostics = createDiagnostics({
    config,
    ...deps.probes,
    now,
    ...(deps.redisSampleIntervalMs === undefined
      ? {}
      : { redisSampleIntervalMs: deps.redisSampleIntervalMs }),
  });
  const inFlight = new Set<Promise<void>>();
  let accepting = true;
  const track = (work: Promise<void>) => {
    const tracked = work.catch((error: unknown) => log.error({ err: error }, 'background work failed'));
    inFlight.add(tracked);
    void tracked.finally(() => inFlight.delete(tracked));
  };

  // The outbox has its own Web API client: Bolt rewrites its own client's retry options.
  const gateway = createSlackGateway({ botToken: deps.slack.botToken, slackApiUrl: deps.slackApiUrl });
  const { outbox, deliverer } = createOutbox({ store, gateway, logger });
  deliverer.start();
  const statusFlow = new StatusFlow({ config, diagnostics, store, outbox, logger, now });
  const allowed = new Set(config.slack.allowedChannels);
  const targets = diagnostics.targets();

  function health(_req: IncomingMessage, res: ServerResponse): void {
    const stats = outbox.stats();
    res.writeHead(accepting ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: accepting, outboxPending: stats.pending, outboxFailed: stats.failed }));
  }

  function makeHandlers(): SlackHandlers {
    return {
      command(input: CommandInput) {
        // Redelivered envelopes and HTTP retries carry the same trigger_id: answer once.
        if (!store.markSeen(`cmd:${input.triggerId}`, now())) {
          log.info({ trigger: input.triggerId, retry: input.retryNum }, 'redelivered command ignored');
          return { reply: undefined, later: undefined };
        }
        if (!accepting)
          return { reply: { text: 'okome is restarting; try again in a few seconds.' }, later: undefined };
        if (allowed.size > 0 && !allowed.has(input.channelId)) {
          return {
            reply: {
              text: `okome does not answer in this channel. Use ${[...allowed].map((c) => `<#${c}>`).join(', ')}.`,
            },
            later: undefined,
          };
        }
        const command = parseCommand(input.text, targets);
        const reply = (m: Reply) => ({ reply: m, later: undefined });
        switch (command.kind) {
          case 'help':
            return reply(renderHelp(targets));
          case 'incident':
            return reply(renderRunbookCard(command.number));
          case 'invalid':
            return reply(renderUsage(command.problem));
          default: {
            const scope =
              command.kind === 'check'
                ? { kind: 'check' as const, target: command.target }
                : { kind: command.kind };
            return {
              reply: undefined,
              later: async () => {
                await statusFlow.run({ scope, channel: input.channelId, requester: input.userId });
              },
            };
          }
        }
      },
    };
  }

  const bolt: BoltHandle = await startBolt({
    mode: deps.slack,
    slackApiUrl: deps.slackApiUrl,
    logger,
    track,
    routes: [{ path: '/healthz', method: 'GET', handler: health }],
    handlers: makeHandlers(),
    healthPort: config.http.port,
    healthHost: config.http.host,
  });

  const pruner = setInterval(() => {
    try {
      store.pruneSeen(now() - SEEN_TTL_MS);
      store.pruneSentOutbox(now() - SEEN_TTL_MS);
    } catch (error) {
      log.warn({ err: error }, 'pruning failed');
    }
  }, PRUNE_EVERY_MS);
  pruner.unref();

  log.info(
    { mode: deps.slack.kind, nodes: config.nodes.map((n) => n.name), port: bolt.httpPort },
    'okome ready',
  );
  return {
    diagnostics,
    httpPort: bolt.httpPort,
    async stop(options = {}) {
      const graceMs = options.graceMs ?? 15_000;
      accepting = false;
      clearInterval(pruner);
      await bolt.stopReceiving();
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([Promise.allSettled([...inFlight]), deadline]);
      // What is not delivered now stays in the store's outbox and goes out after the restart.
      await deliverer.flush(Math.min(5000, graceMs));
      await deliverer.stop();
      await bolt.close();
      await deps.probes.close();
      store.close();
      log.info({ pending: inFlight.size }, 'okome stopped');
    },
  };
}
