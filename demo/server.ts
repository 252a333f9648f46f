import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import {
  type HttpReply,
  type HttpRoute,
  type HttpServerHandle,
  sendJson,
  startHttpServer,
} from '../src/http/http-server.js';
import { FAULT_NAMES } from '../test/support/lab/faults.js';
import type { Lab } from '../test/support/lab/lab.js';
import { LAB_NODES } from '../test/support/lab/topology.js';
import type {
  EphemeralMessage,
  SlackEmulator,
  StoreChange,
  StoredMessage,
} from '../test/support/slack-emulator/index.js';
import { type FaultBoard, faultId, resolveTarget } from './fault-board.js';
import type { LabWatch } from './lab-watch.js';
import { personaOf } from './personas.js';
import {
  type ApiEphemeral,
  type ApiMessage,
  type ApiThread,
  type CommandHint,
  type DemoEvents,
  type DemoState,
  PERSONA_IDS,
  type Persona,
  type PersonaId,
} from './web/api-types.js';

/** Everything the API acts on; the demo's main owns their lifetimes. */
export interface DemoContext {
  readonly lab: Lab;
  readonly emu: SlackEmulator;
  readonly channel: string;
  readonly personas: readonly Persona[];
  readonly commands: readonly CommandHint[];
  readonly faults: FaultBoard;
  readonly labWatch: LabWatch;
  readonly hub: EventHub;
  /** Posts a sample Alertmanager alert to the bot's webhook; the bot's HTTP status. */
  readonly sendAlert: (status: 'firing' | 'resolved') => Promise<number>;
}

export interface DemoServerOptions {
  /** 0: a free port. */
  readonly port: number;
  readonly indexHtml: string;
  readonly appJs: string;
  /** The Block Kit stylesheet (demo/web/style.css). */
  readonly styleCss: string;
}

const HOST = '127.0.0.1';
const BODY_LIMIT = 4096;
const SSE_KEEPALIVE_MS = 15_000;
/** How old a lab reading /api/state may return. */
const LAB_STALE_MS = 2000;

/** The page's live connections (SSE) and what they are told. */
export class EventHub {
  readonly #clients = new Set<ServerResponse>();

  get size(): number {
    return this.#clients.size;
  }

  add(res: ServerResponse): void {
    this.#clients.add(res);
    res.once('close', () => this.#clients.delete(res));
  }

  send<E extends keyof DemoEvents>(event: E, data: DemoEvents[E], to?: ServerResponse): void {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of to === undefined ? this.#clients : [to]) if (!res.writableEnded) res.write(frame);
  }

  /** Every client gets a comment line: proxies and the server's idle timeout see traffic. */
  ping(): void {
    for (const res of this.#clients) if (!res.writableEnded) res.write(': ping\n\n');
  }

  closeAll(): void {
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }
}

export function apiMessage(m: StoredMessage): ApiMessage {
  return {
    channel: m.channel,
    ts: m.ts,
    threadTs: m.threadTs ?? null,
    text: m.text,
    blocks: m.blocks ?? null,
    user: m.user ?? null,
    botId: m.botId ?? null,
    edits: m.edits,
    deleted: m.deleted,
  };
}

const personaSchema = z.enum(PERSONA_IDS);
const CommandBody = z.strictObject({ persona: personaSchema, text: z.string().min(1).max(600) });
const ClickBody = z.strictObject({
  persona: personaSchema,
  channel: z.string().regex(/^[CGD][A-Z0-9]{1,20}$/),
  ts: z.string().regex(/^\d{1,12}\.\d{6}$/),
  actionId: z.string().min(1).max(255),
  value: z.string().max(2000).optional(),
  blockId: z.string().min(1).max(255).optional(),
});
const FaultBody = z.strictObject({
  name: z.enum(FAULT_NAMES),
  node: z.enum(LAB_NODES).optional(),
  service: z
    .string()
    .regex(/^[a-z0-9.-]{1,64}$/)
    .optional(),
  action: z.enum(['apply', 'revert']),
});
const AlertBody = z.strictObject({ status: z.enum(['firing', 'resolved']).optional() });

const bad = (error: string, status = 400): HttpReply => ({ status, body: { error } });
const ok = (extra: Record<string, unknown> = {}): HttpReply => ({
  status: 200,
  body: { ok: true, ...extra },
});

function parseBody<T>(schema: z.ZodType<T>, body: Buffer): T | HttpReply {
  let json: unknown;
  try {
    json = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
  } catch {
    return bad('the body is not JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return bad(`invalid request: ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

const isReply = (x: unknown): x is HttpReply =>
  typeof x === 'object' && x !== null && 'status' in x && 'body' in x && typeof x.status === 'number';

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Slack-style ts for the page's own notes (acks with a reply), in the emulator's format. */
function localTs(seq: number): string {
  return `${Math.floor(Date.now() / 1000)}.${String(seq % 1_000_000).padStart(6, '0')}`;
}

/**
 * The demo's HTTP API on loopback, on the bot's own bounded server. Nothing a request carries
 * reaches a shell or a lab command: a fault is one of FAULT_NAMES with a node and a unit from
 * the lab's lists, a command goes to the bot as Slack would send it.
 */
export async function startDemoServer(
  ctx: DemoContext,
  options: DemoServerOptions,
): Promise<HttpServerHandle & { readonly url: string }> {
  const { emu, channel, personas, hub } = ctx;
  let port = options.port;
  /** Replies the bot gave in its ack (help, usage): Slack shows them to the one who typed. */
  const ackReplies: ApiEphemeral[] = [];
  let ackSeq = 0;

  const personaByUser = new Map(personas.map((p) => [p.userId, p.id]));
  const toEphemeral = (e: EphemeralMessage): ApiEphemeral | undefined => {
    const persona = personaByUser.get(e.user);
    if (persona === undefined || e.channel !== channel) return undefined;
    return {
      persona,
      channel: e.channel,
      ts: e.messageTs,
      threadTs: e.threadTs ?? null,
      text: e.text,
      blocks: e.blocks ?? null,
    };
  };

  const state = (): DemoState => {
    const threads: ApiThread[] = emu
      .messagesIn(channel)
      .filter((m) => m.threadTs === undefined)
      .map((root) => ({
        root: apiMessage(root),
        replies: emu
          .threadOf(channel, root.ts)
          .filter((m) => m.ts !== root.ts)
          .map(apiMessage),
      }));
    const ephemerals = Object.fromEntries(PERSONA_IDS.map((id) => [id, [] as ApiEphemeral[]])) as Record<
      PersonaId,
      ApiEphemeral[]
    >;
    for (const e of emu.ephemeralsIn(channel)) {
      const view = toEphemeral(e);
      if (view !== undefined) ephemerals[view.persona].push(view);
    }
    for (const e of ackReplies) ephemerals[e.persona].push(e);
    for (const list of Object.values(ephemerals))
      list.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
    return {
      channel,
      personas,
      commands: ctx.commands,
      messages: threads,
      ephemerals,
      faults: ctx.faults.views(),
      lab: ctx.labWatch.last ?? null,
    };
  };

  const unsubscribe = emu.onChange((change: StoreChange) => {
    if (change.kind === 'message') {
      if (change.message.channel === channel) hub.send('message', apiMessage(change.message));
    } else {
      const view = toEphemeral(change.ephemeral);
      if (view !== undefined) hub.send('ephemeral', view);
    }
  });
  const keepalive = setInterval(() => hub.ping(), SSE_KEEPALIVE_MS);
  keepalive.unref();

  /** DNS rebinding: a page of another site resolving its name to 127.0.0.1 sends its own Host. */
  const screenHost = (req: IncomingMessage): HttpReply | undefined => {
    const host = req.headers.host ?? '';
    return host === `127.0.0.1:${port}` || host === `localhost:${port}` ? undefined : bad('wrong Host', 421);
  };
  /** JSON only: a cross-site form cannot send it without a preflight this server never answers. */
  const screenPost = (req: IncomingMessage): HttpReply | undefined =>
    screenHost(req) ??
    ((req.headers['content-type'] ?? '').split(';')[0]?.trim() === 'application/json'
      ? undefined
      : bad('send application/json', 415));

  const page = (type: string, text: string) => (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, {
      'content-type': `${type}; charset=utf-8`,
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy':
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    });
    res.end(text);
  };

  const post = <T>(path: string, schema: z.ZodType<T>, act: (body: T) => Promise<HttpReply>): HttpRoute => ({
    path,
    method: 'POST',
    maxBodyBytes: BODY_LIMIT,
    screen: screenPost,
    handle: async (_req, res, raw) => {
      const body = parseBody(schema, raw);
      sendJson(res, isReply(body) ? body : await act(body));
    },
  });

  const routes: HttpRoute[] = [
    {
      path: '/',
      method: 'GET',
      maxBodyBytes: 0,
      screen: screenHost,
      handle: page('text/html', options.indexHtml),
    },
    {
      path: '/style.css',
      method: 'GET',
      maxBodyBytes: 0,
      screen: screenHost,
      handle: page('text/css', options.styleCss),
    },
    {
      path: '/app.js',
      method: 'GET',
      maxBodyBytes: 0,
      screen: screenHost,
      handle: page('text/javascript', options.appJs),
    },
    {
      path: '/api/state',
      method: 'GET',
      maxBodyBytes: 0,
      screen: screenHost,
      handle: async (_req, res) => {
        // Without a page connected nobody polls the lab: a reader of the state gets a fresh reading.
        const last = ctx.labWatch.last;
        if (last === undefined || Date.now() - Date.parse(last.at) > LAB_STALE_MS)
          await ctx.labWatch.refresh();
        sendJson(res, { status: 200, body: state() as unknown as Record<string, unknown> });
      },
    },
    {
      path: '/api/events',
      method: 'GET',
      maxBodyBytes: 0,
      screen: screenHost,
      handle: (req, res) => {
        // A stream, not a request: the server's idle backstop must not cut it (pings keep it busy).
        req.socket.setTimeout(0);
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        });
        hub.add(res);
        hub.send('state', state(), res);
        const unwatch = ctx.labWatch.watch();
        res.once('close', unwatch);
      },
    },
    post('/api/command', CommandBody, async ({ persona, text }) => {
      const match = /^\s*(?:\/(\S+))?\s*([\s\S]*)$/.exec(text);
      if (match?.[1] !== undefined && match[1].toLowerCase() !== 'okome')
        return bad(`only /okome is installed here, not /${match[1].slice(0, 32)}`);
      const who = personaOf(personas, persona);
      try {
        const { payload, latencyMs } = await emu.slash({
          userId: who.userId,
          channelId: channel,
          text: (match?.[2] ?? '').trim(),
        }).ack;
        if (typeof payload.text === 'string') {
          ackSeq += 1;
          const reply: ApiEphemeral = {
            persona,
            channel,
            ts: localTs(ackSeq),
            threadTs: null,
            text: payload.text,
            blocks: Array.isArray(payload.blocks) ? payload.blocks : null,
          };
          ackReplies.push(reply);
          hub.send('ephemeral', reply);
        }
        return ok({ ackMs: Math.round(latencyMs) });
      } catch (error) {
        return bad(`the bot did not acknowledge the command: ${errorText(error)}`, 502);
      }
    }),
    post('/api/click', ClickBody, async (body) => {
      if (body.channel !== channel) return bad(`the demo has one channel, ${channel}`, 404);
      if (emu.message(body.channel, body.ts) === undefined) return bad('no such message', 404);
      const who = personaOf(personas, body.persona);
      let delivery: ReturnType<SlackEmulator['click']>;
      try {
        delivery = emu.click({
          userId: who.userId,
          channelId: body.channel,
          messageTs: body.ts,
          actionId: body.actionId,
          ...(body.value === undefined ? {} : { value: body.value }),
          ...(body.blockId === undefined ? {} : { blockId: body.blockId }),
        });
      } catch (error) {
        return bad(errorText(error), 409);
      }
      try {
        const { latencyMs } = await delivery.ack;
        return ok({ ackMs: Math.round(latencyMs) });
      } catch (error) {
        return bad(`the bot did not acknowledge the click: ${errorText(error)}`, 502);
      }
    }),
    post('/api/fault', FaultBody, async ({ name, node, service, action }) => {
      const target = resolveTarget(name, node, service);
      if (typeof target === 'string') return bad(target);
      try {
        const details = action === 'apply' ? await ctx.faults.apply(target) : undefined;
        if (action === 'revert') await ctx.faults.revert(target);
        void ctx.labWatch.refresh();
        return ok({ fault: faultId(target), action, ...(details === undefined ? {} : { details }) });
      } catch (error) {
        return bad(`${action} ${faultId(target)} failed: ${errorText(error)}`, 500);
      }
    }),
    post('/api/alert', AlertBody, async ({ status }) => {
      try {
        return ok({ botStatus: await ctx.sendAlert(status ?? 'firing') });
      } catch (error) {
        return bad(`the bot's webhook did not answer: ${errorText(error)}`, 502);
      }
    }),
  ];

  const server = await startHttpServer({ host: HOST, port: options.port, routes });
  port = server.port;
  return {
    ...server,
    url: `http://${HOST}:${port}`,
    close: async () => {
      unsubscribe();
      clearInterval(keepalive);
      hub.closeAll();
      await server.close();
    },
  };
}
