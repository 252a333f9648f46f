import { AsyncResource } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AlertmanagerAuth, AlertmanagerClient } from './alerts/alertmanager-api.js';
import { DeadmanSwitch } from './alerts/deadman-switch.js';
import type { HookSecrets } from './alerts/keepalived-hook.js';
import { VipAddressMonitor } from './alerts/vip-address-monitor.js';
import { vipProbeFromDiagnostics } from './alerts/vip-probe.js';
import { VipWatcher } from './alerts/vip-watcher.js';
import {
  createAlertmanagerRoute,
  createKeepalivedRoute,
  type HookRefusalRecord,
} from './alerts/webhook-routes.js';
import { createPngRenderer } from './charts/png-renderer.js';
import { configWarnings } from './config/config-warnings.js';
import type { LoadedConfig } from './config/load-config.js';
import { createDiagnostics, type Diagnostics } from './diagnostics/diagnose.js';
import { RedisSampleFile, redisSamplePath } from './diagnostics/redis-sample-file.js';
import {
  ACK_PREFIX,
  APPROVE_PREFIX,
  REJECT_PREFIX,
  SILENCE_PREFIX,
  UNSILENCE_PREFIX,
} from './domain/action-ids.js';
import { approvalStates } from './domain/approval.js';
import { parseCommand } from './domain/command.js';
import { parseSilenceAction, parseUnsilenceAction } from './domain/silence.js';
import { type HttpRoute, type HttpServerHandle, startHttpServer } from './http/http-server.js';
import { AlertUseCase } from './incidents/alert-use-case.js';
import { coverageOf } from './incidents/coverage-use-case.js';
import { IncidentService } from './incidents/incident-service.js';
import { IncidentReports } from './incidents/report-use-case.js';
import { type SilenceOutcome, SilenceUseCase } from './incidents/silence-use-case.js';
import { StatusUseCase } from './incidents/status-use-case.js';
import type { Logger } from './logger.js';
import { BotMetrics } from './metrics/bot-metrics.js';
import { httpResponseObserver, instrumentDiagnostics, instrumentGateway } from './metrics/instrument.js';
import { createMetricsRoute, createReadyRoute } from './metrics/metrics-routes.js';
import { type Clock, systemClock } from './outbox/clock.js';
import { createOutbox } from './outbox/outbox.js';
import type { Probes } from './probes/create-probes.js';
import { ApprovalsService } from './remediation/approvals-service.js';
import { DrillService } from './remediation/drill-service.js';
import { authorizeApprover, CachedUsergroupDirectory } from './remediation/usergroup-directory.js';
import type {
  ActionInput,
  CommandInput,
  Handled,
  Reply,
  SlackHandlers,
  SlackMode,
} from './slack/bolt-app.js';
import {
  type BoltHandle,
  createSlackGateway,
  startBolt,
  usergroupMembers,
  userName,
} from './slack/bolt-runtime.js';
import { IncidentCommands } from './slack/flows/incident-commands.js';
import { renderCoverage } from './slack/render/coverage-message.js';
import { renderHelp, renderRunbookCard, renderUsage } from './slack/render/incident-message.js';
import { channelLink } from './slack/render/mrkdwn.js';
import { slackPresenter } from './slack/slack-presenter.js';
import { type Leadership, soleLeadership } from './store/leadership.js';
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
  /** While Slack refuses the bot token: how often the outbox asks auth.test (tests shorten it). */
  readonly slackAuthProbeMs?: number;
  /** From the environment; an endpoint without its secret answers 503 (disabled). */
  readonly webhooks?: {
    readonly alertmanagerToken: string | undefined;
    readonly keepalivedSecrets: HookSecrets;
  };
  /** Credentials for Alertmanager's API (silences), from the environment; default none. */
  readonly alertmanagerAuth?: AlertmanagerAuth;
  /** Timers of the dead-man's switch (tests drive a manual clock); default the system's. */
  readonly schedule?: Clock['schedule'];
  /** OKOME_METRICS_TOKEN: the bearer token GET /metrics asks for (see MetricsRouteOptions). */
  readonly metricsToken?: string | undefined;
  /**
   * Replicas on one PostgreSQL (store.replicas): this replica's name (its outbox claims) and the
   * election of the one that runs the singletons. Default: the only serving process (serve lock).
   */
  readonly replica?: {
    readonly name: string;
    readonly leadership: Leadership;
    /** How long a claim on an outbox row lasts (default 30 s). */
    readonly outboxLeaseMs?: number;
  };
}

export interface RunningApp {
  readonly diagnostics: Diagnostics;
  /** The port of the bot's HTTP server (Slack in HTTP mode, /healthz, the webhooks). */
  readonly httpPort: number;
  /** The port of the metrics listener when `metrics.listen` gives it one; else undefined. */
  readonly metricsPort: number | undefined;
  /** Stops taking work, finishes what is in flight (bounded), delivers what it can, closes. */
  stop(options?: { graceMs?: number }): Promise<void>;
}

/**
 * Where the bot's HTTP server listens: the configured address; unset, every address in HTTP mode
 * (Slack must reach it) and loopback in Socket Mode (Slack needs no port; the hooks listen
 * beyond this machine only where the configuration says).
 */
export function listenHost(mode: SlackMode['kind'], configured: string | undefined): string {
  return configured ?? (mode === 'http' ? '0.0.0.0' : '127.0.0.1');
}

const PRUNE_EVERY_MS = 60 * 60_000;
const SEEN_TTL_MS = 24 * 60 * 60_000;
const EXPIRY_SWEEP_MS = 15_000;
const REDIS_SAMPLE_EVERY_MS = 60_000;
/**
 * Replicas: a drill started longer ago than this is no live replica's any more (a drill takes
 * well under it: moves bounded at 30 s, steps at their timeouts): the leader restores it.
 */
const DRILL_OVERDUE_MS = 10 * 60_000;
/** Replicas: how often the leader reads the latest Watchdog any replica received. */
const DEADMAN_POLL_MS = 1000;

export async function createApp(deps: AppDeps): Promise<RunningApp> {
  const { config, store, logger } = deps;
  const now = deps.now ?? Date.now;
  const log = logger.child({ component: 'app' });
  const metrics = new BotMetrics({
    outboxCounts: () => store.outboxCounts(),
    openIncidentNumbers: async () => (await store.openIncidents()).map((i) => i.number),
    approvals: () => store.approvalsInStates(approvalStates),
    ...(deps.probes.ssh === undefined ? {} : { ssh: deps.probes.ssh }),
    now,
  });
  const plainDiagnostics = createDiagnostics({
    config,
    ...deps.probes,
    now,
    // The served bot's samples (one a minute) keep a one-shot CLI run's window start fresh.
    redisSamples: new RedisSampleFile(redisSamplePath(config), logger),
    ...(deps.redisSampleIntervalMs === undefined
      ? {}
      : { redisSampleIntervalMs: deps.redisSampleIntervalMs }),
  });
  const diagnostics = instrumentDiagnostics(plainDiagnostics, metrics);
  const inFlight = new Set<Promise<void>>();
  let accepting = true;
  const track = (work: Promise<unknown>) => {
    const tracked = work.then(
      () => undefined,
      (error: unknown) => log.error({ err: error }, 'background work failed'),
    );
    inFlight.add(tracked);
    void tracked.finally(() => inFlight.delete(tracked));
  };

  // The outbox has its own Web API client: Bolt rewrites its own client's retry options.
  const { gateway: slackGateway, client: gatewayClient } = createSlackGateway({
    botToken: deps.slack.botToken,
    slackApiUrl: deps.slackApiUrl,
  });
  const gateway = instrumentGateway(slackGateway, metrics);
  const { outbox, deliverer } = createOutbox({
    store,
    gateway,
    logger,
    pacing: { postIntervalMs: config.slack.postPacing.intervalMs, postBurst: config.slack.postPacing.burst },
    ...(deps.replica === undefined
      ? {}
      : { replica: deps.replica.name, claimLeaseMs: deps.replica.outboxLeaseMs ?? 30_000 }),
    ...(deps.slackAuthProbeMs === undefined ? {} : { authProbeMs: deps.slackAuthProbeMs }),
  });
  deliverer.start();
  const directory = new CachedUsergroupDirectory(
    { members: (group) => usergroupMembers(gatewayClient, group) },
    { now },
  );
  const presenter = slackPresenter;
  const approvals = new ApprovalsService({
    config,
    store,
    outbox,
    diagnostics,
    shell: deps.probes.shell,
    redis: deps.probes.redis,
    directory,
    presenter,
    logger,
    now,
    // Runs of other replicas are not in this process: only the overdue ones are stuck.
    sharedRuns: deps.replica !== undefined,
  });
  const drills = new DrillService({
    config,
    store,
    outbox,
    diagnostics,
    shell: deps.probes.shell,
    http: deps.probes.http,
    redis: deps.probes.redis,
    directory,
    presenter,
    logger,
    now,
  });
  const reports = new IncidentReports({
    store,
    outbox,
    presenter,
    uploads: config.slack.uploads,
    now,
    logger,
    renderPng: createPngRenderer(),
  });
  const incidents = new IncidentService({
    incidentChannel: config.slack.incidentChannel,
    store,
    outbox,
    presenter,
    approvals,
    reports,
    logger,
    now,
    track,
    mention: presenter.mention,
    recovery: (incident, seen, since) => diagnostics.recovery(incident, seen, since),
  });
  const statusUseCase = new StatusUseCase({ diagnostics, incidents, outbox, presenter, logger, now });
  const leadership = deps.replica?.leadership ?? soleLeadership();
  // The only bot (serve lock) needs no fence: no other process can lead. Replicas fence every
  // singleton write with their term (store.fenced).
  const fenced = <T>(term: number, fn: () => Promise<T>): Promise<T> =>
    deps.replica === undefined ? fn() : store.fenced(term, fn);
  /** A singleton's store work: committed only in this process's leader term. */
  const asLeader = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    const term = leadership.term();
    if (term === undefined) {
      log.warn('not the leader (any more): a singleton write skipped');
      return undefined;
    }
    return fenced(term, fn);
  };
  const deadmanConfig = config.alerts.deadman;
  const deadman = deadmanConfig.enabled
    ? new DeadmanSwitch({
        timeoutMs: deadmanConfig.timeoutMs,
        clock: { now, schedule: deps.schedule ?? systemClock.schedule },
        notify: async (notice) => {
          await asLeader(() =>
            store.atomically(async () => {
              // Replicas: the next leader goes on from here, and says nothing twice.
              if (deps.replica !== undefined)
                await store.setDeadmanLost(notice.kind === 'lost' ? notice.at : null);
              await outbox.enqueuePost({
                channel: config.slack.incidentChannel,
                payload: presenter.deadman(notice, deadmanConfig.alertname),
              });
            }),
          );
        },
        onError: (error) => log.warn({ err: error }, 'dead-man notice failed'),
      })
    : undefined;
  const amConfig = config.alerts.alertmanager;
  const alertmanager =
    amConfig.url === undefined
      ? undefined
      : new AlertmanagerClient({
          url: amConfig.url,
          auth: deps.alertmanagerAuth ?? { kind: 'none' },
          timeoutMs: amConfig.timeoutMs,
        });
  const silences =
    alertmanager === undefined
      ? undefined
      : new SilenceUseCase({
          store,
          alertmanager,
          incidents,
          presenter,
          userName: (id) => userName(gatewayClient, id),
          permalink: async (record) => {
            const ts = record.rootRef === null ? undefined : await outbox.tsOf(record.rootRef);
            if (ts === undefined) return undefined;
            return (await gateway.getPermalink({ channel: record.channel, message_ts: ts })).permalink;
          },
          logger,
          now,
        });
  const alerts = new AlertUseCase({
    config,
    store,
    incidents,
    presenter,
    diagnostics,
    status: statusUseCase,
    logger,
    now,
    track,
    // A diagnosis can take statusMs; a claim outlives it (a dead replica's lapses for another).
    ...(deps.replica === undefined
      ? {}
      : {
          replica: {
            name: deps.replica.name,
            leaseMs: Math.max(deps.replica.outboxLeaseMs ?? 30_000, 3 * config.timeouts.statusMs),
          },
        }),
    // Called inside the webhook's store transaction: bound to this context, so the notice it may
    // post runs as its own work, not as part of that transaction.
    ...(deadman === undefined
      ? {}
      : {
          onWatchdog: AsyncResource.bind((at: number) => {
            deadman.seen(at);
            // Replicas: the leader's switch reads it from the store (DEADMAN_POLL_MS).
            if (deps.replica !== undefined) track(store.recordWatchdog(at));
          }),
        }),
    silences: alertmanager !== undefined,
    setTimer: systemClock.schedule,
    // A drill's failover is planned: said in the drill's thread, no incident (through the store,
    // so every replica sees the same drill).
    plannedMove: async (text: string) => {
      const drill = await drills.activeFailover();
      if (drill === undefined) return false;
      await drills.notePlanned(drill, text);
      return true;
    },
    runningActions: async () =>
      (await store.approvalsInStates(['approved', 'running'])).map((a) => ({
        actionId: a.actionId,
        nodes: a.targets,
      })),
  });
  const markSeen = (key: string, at: number) => store.markSeen(key, at);
  let watcher: VipWatcher | undefined;
  let monitor: VipAddressMonitor | undefined;
  // Reported by /healthz: a failover can only be announced once the watcher knows who held the VIP.
  let vipWatch: 'off' | 'starting' | 'watching' = config.alerts.vipWatch.enabled ? 'starting' : 'off';
  // A notify from a node the configuration does not name is refused unread and kept on record.
  const auditUnknownNode = (refusal: HookRefusalRecord) => {
    track(
      Promise.resolve().then(() =>
        store.appendAudit({
          at: refusal.at,
          approvalId: null,
          incidentId: null,
          actionId: null,
          actor: `keepalived:${refusal.node}`,
          event: 'keepalived-notify',
          verdict: 'refused',
          code: 'unknown-node',
          reason: `${refusal.error} (HTTP ${refusal.status}, from ${refusal.remoteAddress ?? 'unknown address'})`,
          stateBefore: null,
          stateAfter: null,
          targets: [refusal.node],
          commands: [],
        }),
      ),
    );
  };
  const webhookRoutes: HttpRoute[] = [
    createAlertmanagerRoute({
      token: deps.webhooks?.alertmanagerToken,
      maxBodyBytes: config.alerts.maxBodyBytes,
      markSeen,
      atomically: (fn) => store.atomically(fn),
      record: (batch, delivery) => alerts.attach(batch, delivery),
      logger,
      now,
      onAlerts: () => alerts.followUp(),
    }),
    createKeepalivedRoute({
      secrets: deps.webhooks?.keepalivedSecrets ?? { shared: undefined, perNode: new Map() },
      knownNodes: new Set(config.nodes.map((n) => n.name)),
      replayWindowSec: config.alerts.replayWindowSec,
      markSeen,
      atomically: (fn) => store.atomically(fn),
      record: (event) => alerts.receiveKeepalived(event),
      logger,
      now,
      onUnknownNode: auditUnknownNode,
      onKeepalived: () => {
        const handled = alerts.followUp();
        // The hook says what changed; the watcher confirms it at once.
        const w = watcher;
        if (w !== undefined) track(asLeader(() => w.poll()));
        return handled;
      },
    }),
  ];
  /** Ack, resolve and silences: responders and approvers (user IDs, or members of their user groups). */
  const responderOrApprover = (user: string) =>
    authorizeApprover(
      user,
      {
        users: [...config.slack.approvers.users, ...config.slack.responders.users],
        groups: [...config.slack.approvers.groups, ...config.slack.responders.groups],
      },
      directory,
    );
  const incidentCommands = new IncidentCommands({
    store,
    outbox,
    incidents,
    reports,
    mayResolve: responderOrApprover,
    now,
  });
  // Approvals a crash left approved or running: interrupted, said in their thread, never re-run.
  // Replicas cannot tell a crashed run from another replica's: their leader's sweep ends the
  // overdue ones instead (endStuckRuns).
  if (deps.replica === undefined) {
    const interrupted = await approvals.recover();
    if (interrupted > 0) log.warn({ interrupted }, 'approvals interrupted by a restart');
  }
  // A drill a crash left with a service stopped: restored now (or said loudly that it could not).
  // Replicas: the leader does it (startSingletons), another replica may be running it.
  if (deps.replica === undefined) track(drills.recover());
  const allowed = new Set(config.slack.allowedChannels);
  for (const w of configWarnings(config)) log.warn({ path: w.path, fix: w.fix }, w.message);
  const targets = diagnostics.targets();

  async function healthReport(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    const stats = await outbox.stats();
    // A refused token: the bot can say nothing in Slack until someone fixes it.
    const healthy = accepting && stats.authFailure === undefined;
    res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' });
    const holding = watcher?.current().holding;
    res.end(
      JSON.stringify({
        ok: healthy,
        slackAuth:
          stats.authFailure === undefined
            ? 'ok'
            : { error: stats.authFailure.code, since: new Date(stats.authFailure.since).toISOString() },
        outboxPending: stats.pending,
        outboxFailed: stats.failed,
        // Replicas: whether this one runs the singletons (the only bot always does).
        role: leadership.term() === undefined ? 'standby' : 'leader',
        vipWatch,
        // Nodes whose address stream is open (changes pushed); null when streaming is off.
        vipStream: config.alerts.vipWatch.stream ? (monitor?.liveNodes() ?? []) : null,
        vipHolder: holding?.kind === 'single' ? holding.holder : (holding?.kind ?? null),
        // The dead-man's switch: off, waiting (no Watchdog yet), alive or lost.
        deadman: deadman?.current().kind ?? 'off',
      }),
    );
  }

  function health(req: IncomingMessage, res: ServerResponse, _body: Buffer): void {
    healthReport(req, res).catch((error: unknown) => {
      log.error({ err: error }, 'health check failed');
      if (!res.headersSent) res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: false, error: 'store unavailable' }));
    });
  }

  /**
   * The silence buttons (Silence 1 h / 4 h, Expire silence): responders and approvers; ids
   * parsed by the domain, the work after the ack, refusals said to the clicker alone.
   */
  async function silenceClick(input: ActionInput): Promise<Handled> {
    const silenceAction = parseSilenceAction(input.actionId, input.value);
    const unsilenceAction = parseUnsilenceAction(input.actionId, input.value);
    if (silences === undefined || (silenceAction === undefined && unsilenceAction === undefined))
      return { reply: { text: 'That button is not one of mine.' }, later: undefined };
    if (!(await store.markSeen(`silence:${input.triggerId}:${input.actionTs}`, now())))
      return { reply: undefined, later: undefined };
    return {
      reply: undefined,
      later: async () => {
        const who = await responderOrApprover(input.userId);
        let result: SilenceOutcome;
        if (!who.allowed)
          result = { ok: false, reason: `Only responders and approvers may silence: ${who.reason}` };
        else if (silenceAction !== undefined)
          result = await silences.silence(silenceAction.incidentId, silenceAction.duration, input.userId);
        else result = await silences.expire(unsilenceAction?.incidentId ?? 0, input.userId);
        if (!result.ok && input.channelId !== undefined) {
          await outbox.enqueueEphemeral({
            channel: input.channelId,
            user: input.userId,
            payload: { text: result.reason },
          });
        }
      },
    };
  }

  /** The Ack button: responders and approvers; the incident id is validated, never trusted as text. */
  async function acknowledge(input: ActionInput): Promise<Handled> {
    const id = Number(input.actionId.slice(ACK_PREFIX.length));
    if (!Number.isSafeInteger(id) || id <= 0 || input.value !== String(id)) {
      return { reply: { text: 'That button is not one of mine.' }, later: undefined };
    }
    if (!(await store.markSeen(`ack:${input.triggerId}:${input.actionTs}`, now())))
      return { reply: undefined, later: undefined };
    return {
      reply: undefined,
      later: async () => {
        // The Ack button lives on the incident's root: a click from anywhere else does nothing.
        const record = await incidents.byId(id);
        const root = record?.rootRef == null ? undefined : await store.message(record.rootRef);
        if (root?.ts == null || root.channel !== input.channelId || root.ts !== input.messageTs) {
          await store.appendAudit({
            at: now(),
            approvalId: null,
            incidentId: record === undefined ? null : id,
            actionId: null,
            actor: input.userId,
            event: 'acknowledge',
            verdict: 'refused',
            code: 'not-from-card',
            reason: "the click did not come from the incident's root message",
            stateBefore: record?.status ?? null,
            stateAfter: record?.status ?? null,
            targets: [],
            commands: [],
          });
          log.warn({ incident: id, user: input.userId }, 'Ack not from the incident root ignored');
          return;
        }
        const who = await responderOrApprover(input.userId);
        const result = who.allowed
          ? await incidents.acknowledge(id, input.userId)
          : { ok: false as const, reason: `Only responders and approvers may acknowledge: ${who.reason}` };
        if (!result.ok && input.channelId !== undefined) {
          await outbox.enqueueEphemeral({
            channel: input.channelId,
            user: input.userId,
            payload: { text: result.reason },
          });
        }
      },
    };
  }

  function makeHandlers(): SlackHandlers {
    return {
      async command(input: CommandInput): Promise<Handled> {
        // Redelivered envelopes and HTTP retries carry the same trigger_id: answer once.
        if (!(await store.markSeen(`cmd:${input.triggerId}`, now()))) {
          log.info({ trigger: input.triggerId, retry: input.retryNum }, 'redelivered command ignored');
          return { reply: undefined, later: undefined };
        }
        if (!accepting)
          return { reply: { text: 'okome is restarting; try again in a few seconds.' }, later: undefined };
        if (allowed.size > 0 && !allowed.has(input.channelId)) {
          return {
            reply: {
              text: `okome does not answer in this channel. Use ${[...allowed].map(channelLink).join(', ')}.`,
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
          case 'resolve':
            return incidentCommands.resolve(command.incident, input.userId, input.channelId);
          case 'timeline':
            return reply(await incidentCommands.timeline(command.incident));
          case 'report':
            return incidentCommands.report(command.incident);
          case 'drill':
            return drills.request(command.drill, input.userId, input.channelId);
          case 'coverage':
            // One read of the store (no network): answered in the ack, ephemeral.
            return reply(renderCoverage(await coverageOf(store, now())));
          default: {
            const scope =
              command.kind === 'check'
                ? { kind: 'check' as const, target: command.target }
                : { kind: command.kind };
            return {
              reply: undefined,
              later: async () => {
                await statusUseCase.run({ scope, channel: input.channelId, requester: input.userId });
              },
            };
          }
        }
      },
      action: async (input) => {
        if (!accepting)
          return { reply: { text: 'okome is restarting; click again in a few seconds.' }, later: undefined };
        if (input.actionId.startsWith(ACK_PREFIX)) return acknowledge(input);
        if (input.actionId.startsWith(SILENCE_PREFIX) || input.actionId.startsWith(UNSILENCE_PREFIX))
          return silenceClick(input);
        if (input.actionId.startsWith(APPROVE_PREFIX) || input.actionId.startsWith(REJECT_PREFIX))
          return (await drills.owns(input.actionId)) ? drills.click(input) : approvals.click(input);
        return { reply: { text: 'That button is not one of mine.' }, later: undefined };
      },
    };
  }

  const bolt: BoltHandle = await startBolt({
    mode: deps.slack,
    slackApiUrl: deps.slackApiUrl,
    logger,
    track,
    handlers: makeHandlers(),
  });
  // Ready = Slack connected and the store takes a write (a seen-event key, pruned like the rest).
  let readyProbes = 0;
  const readyRoute = createReadyRoute(async () => {
    const at = now();
    readyProbes += 1;
    const writable = await store.markSeen(`readyz:${at}:${readyProbes}`, at).then(
      () => true,
      () => false,
    );
    return { slack: accepting && bolt.connected(), store: writable };
  }, logger);
  const ownBind = config.metrics.listen;
  const metricsRoute = createMetricsRoute({
    metrics,
    token: deps.metricsToken,
    requireToken: ownBind === undefined,
    logger,
  });
  const mainRoutes: HttpRoute[] = [
    ...bolt.routes,
    ...webhookRoutes,
    { path: '/healthz', method: 'GET', maxBodyBytes: 0, handle: health },
    readyRoute,
    ...(ownBind === undefined ? [metricsRoute] : []),
  ];
  let http: HttpServerHandle;
  let metricsHttp: HttpServerHandle | undefined;
  try {
    http = await startHttpServer({
      host: listenHost(deps.slack.kind, config.http.host),
      port: config.http.port,
      limits: config.http,
      logger,
      routes: mainRoutes,
      onResponse: httpResponseObserver(mainRoutes, metrics),
    });
    if (ownBind !== undefined) {
      const routes = [metricsRoute, readyRoute];
      metricsHttp = await startHttpServer({
        host: ownBind.host,
        port: ownBind.port,
        limits: config.http,
        logger,
        routes,
        onResponse: httpResponseObserver(routes, metrics),
      }).catch(async (error: unknown) => {
        await http.close();
        await metricsHttp?.close();
        throw error;
      });
    }
  } catch (error) {
    await bolt.close();
    throw error;
  }

  // The singletons: one process runs them (the leader of the replicas, or the only bot).
  let expiry: NodeJS.Timeout | undefined;
  let deadmanPoll: NodeJS.Timeout | undefined;
  let pruner: NodeJS.Timeout | undefined;
  const startSingletons = async (): Promise<void> => {
    if (!accepting) return;
    if (deadman !== undefined && deps.replica !== undefined) {
      // The switch as the previous leader left it, fed with what any replica receives.
      const record = await store.deadmanRecord().catch((error: unknown) => {
        log.warn({ err: error }, "reading the dead-man's switch failed; it starts afresh");
        return { lastSeen: null, lostSince: null };
      });
      let fed = record.lastSeen ?? 0;
      deadman.start(
        record.lostSince !== null
          ? { kind: 'lost', lastSeen: record.lastSeen ?? undefined, since: record.lostSince }
          : record.lastSeen !== null
            ? { kind: 'alive', lastSeen: record.lastSeen }
            : undefined,
      );
      deadmanPoll = setInterval(() => {
        store.deadmanRecord().then(
          (r) => {
            if (r.lastSeen === null || r.lastSeen <= fed) return;
            fed = r.lastSeen;
            deadman.seen(r.lastSeen);
          },
          (error: unknown) => log.warn({ err: error }, "reading the dead-man's switch failed"),
        );
      }, DEADMAN_POLL_MS);
      deadmanPoll.unref();
    } else deadman?.start();
    if (deps.replica !== undefined) {
      // A new leader takes over the sweeps at once: runs a dead leader left are ended when overdue.
      track(approvals.endStuckRuns());
    }
    if (config.alerts.vipWatch.enabled) {
      const m = config.alerts.vipWatch.stream
        ? new VipAddressMonitor({
            shell: deps.probes.shell,
            nodes: config.nodes.filter((n) => n.holdsVip).map((n) => n.name),
            address: config.vip.address,
            onChange: () => watcher?.nudge(),
            setTimer: systemClock.schedule,
            logger: log,
          })
        : undefined;
      const w = new VipWatcher({
        probe: vipProbeFromDiagnostics(diagnostics),
        onEvent: (event) => alerts.onVipEvent(event),
        onSteady: (holder, lookStartedAt) => alerts.watcherSteady(holder, lookStartedAt),
        now,
        setTimer: systemClock.schedule,
        intervalMs: config.alerts.vipWatch.intervalMs,
        idleIntervalMs: config.alerts.vipWatch.idleIntervalMs,
        quiet: () => m?.live() === true,
        onError: (error) => log.warn({ err: error }, 'VIP watcher'),
      });
      watcher = w;
      monitor = m;
      // Opened before the baseline poll: a change during it is pushed, not missed.
      m?.start();
      vipWatch = 'starting';
      // The first look is the baseline, compared with the holder on record: a move while no
      // watcher looked (a leader change, a restart) is said now.
      const lookStartedAt = now();
      track(
        w.poll().then(async () => {
          if (watcher !== w) return;
          const holding = w.current().holding;
          await alerts
            .watcherBaseline(holding?.kind === 'single' ? holding.holder : undefined, lookStartedAt)
            .catch((error: unknown) => log.warn({ err: error }, 'VIP watcher baseline'));
          if (watcher !== w) return;
          vipWatch = 'watching';
          w.start();
        }),
      );
    }
    // Alert follow-ups a crash (or a store failure) left undone: resumed now, then retried.
    track(alerts.followUp());
    expiry = setInterval(() => {
      approvals.expire().catch((error: unknown) => log.warn({ err: error }, 'expiring approvals failed'));
      drills.expire().catch((error: unknown) => log.warn({ err: error }, 'expiring drills failed'));
      if (deps.replica !== undefined) track(drills.recover({ startedBeforeMs: DRILL_OVERDUE_MS }));
      approvals
        .endStuckRuns()
        .catch((error: unknown) => log.warn({ err: error }, 'ending stuck runs failed'));
      track(alerts.followUp());
    }, EXPIRY_SWEEP_MS);
    expiry.unref();
    pruner = setInterval(() => {
      const cutoff = now() - SEEN_TTL_MS;
      Promise.all([store.pruneSeen(cutoff), store.pruneSentOutbox(cutoff)]).catch((error: unknown) =>
        log.warn({ err: error }, 'pruning failed'),
      );
    }, PRUNE_EVERY_MS);
    pruner.unref();
  };
  const stopSingletons = async (): Promise<void> => {
    monitor?.stop();
    monitor = undefined;
    watcher?.stop();
    watcher = undefined;
    if (config.alerts.vipWatch.enabled) vipWatch = 'starting';
    deadman?.stop();
    clearInterval(deadmanPoll);
    clearInterval(pruner);
    clearInterval(expiry);
  };
  // Timers made inside fenced() keep its context: every sweep's store work stays in the term.
  leadership.start({
    elected: (term) => fenced(term, startSingletons),
    deposed: stopSingletons,
  });

  // A recent Redis sample keeps every status's hit ratio a window ratio, without a cold wait.
  const primeRedis = () =>
    diagnostics
      .primeRedisWindow()
      .catch((error: unknown) => log.debug({ err: error }, 'Redis sample failed'));
  track(primeRedis());
  const redisSampler = setInterval(() => track(primeRedis()), REDIS_SAMPLE_EVERY_MS);
  redisSampler.unref();

  log.info({ mode: deps.slack.kind, nodes: config.nodes.map((n) => n.name), port: http.port }, 'okome ready');
  return {
    diagnostics,
    httpPort: http.port,
    metricsPort: metricsHttp?.port,
    async stop(options = {}) {
      const graceMs = options.graceMs ?? 15_000;
      accepting = false;
      await leadership.stop();
      clearInterval(redisSampler);
      await bolt.stopReceiving();
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([Promise.allSettled([...inFlight]), deadline]);
      // What is not delivered now stays in the store's outbox and goes out after the restart.
      await deliverer.flush(Math.min(5000, graceMs));
      await deliverer.stop();
      await bolt.close();
      await http.close();
      await deps.probes.close();
      await alertmanager?.close();
      await store.close();
      log.info({ pending: inFlight.size }, 'okome stopped');
    },
  };
}
