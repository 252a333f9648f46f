// One node:http server playing Slack: Web API at /api/<method>, Socket Mode at /link/,
// response_url at /response/<id>. Every call is recorded; faults are injected on demand.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Directory, type UserPatch } from './directory.js';
import { FaultInjector, type FaultKind, type FaultSpec } from './faults.js';
import { type EmulatedFile, FileStore, uploadedBytes } from './files.js';
import { formEncode, postToApp, type ReceiverReply, type SignedRequestOptions } from './http-mode.js';
import {
  type EphemeralMessage,
  MessageStore,
  type StoredMessage,
  type StoreListener,
} from './message-store.js';
import {
  buildBlockActionsPayload,
  buildEventCallbackPayload,
  buildSlashCommandPayload,
  type ClickInput,
  type InteractionContext,
  type SlashCommandInput,
  type Workspace,
} from './payloads.js';
import { bearerToken, parseApiParams, readBody, readBodyBytes } from './request-body.js';
import {
  parseResponseBody,
  type RecordedResponse,
  type ResponseOrigin,
  type ResponseReply,
  ResponseUrls,
} from './response-url.js';
import {
  type Delivery,
  type DisconnectReason,
  type EnvelopeRecord,
  type EnvelopeType,
  SocketModeServer,
} from './socket-mode.js';
import { TriggerRegistry } from './triggers.js';
import { type Found, waitFor } from './wait-for.js';
import { type ApiReply, answerApiCall } from './web-api.js';
import { rejectUpgrade } from './web-socket-server.js';

export interface SlackEmulatorOptions {
  /** Defaults to 127.0.0.1; lab tests bind a lab address. */
  readonly host?: string;
  /** Defaults to 0: a free port. */
  readonly port?: number;
  /** Slack's ack deadline; 3000 ms unless a test needs it shorter. */
  readonly ackTimeoutMs?: number;
  /** Redeliver once (retry_attempt 1) an envelope not acked in time, as Slack does. */
  readonly redeliverOnAckTimeout?: boolean;
  /** Socket Mode: envelopes to the newest connection (default) or to each open one in turn. */
  readonly spread?: 'newest' | 'round-robin';
  readonly workspace?: Partial<Workspace>;
  /** The clock of fault windows (`forMs`): a test ends one by advancing it, not by waiting. */
  readonly faultClock?: () => number;
}

export interface RecordedCall {
  readonly method: string;
  /** As sent, with blocks / view / metadata / attachments JSON-decoded. */
  readonly params: Readonly<Record<string, unknown>>;
  readonly token: string | undefined;
  readonly time: number;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The JSON answered. */
  readonly response: Readonly<Record<string, unknown>>;
  readonly fault: FaultKind | undefined;
  readonly warnings: readonly string[];
}

export interface UploadPost {
  readonly fileId: string;
  readonly time: number;
  readonly status: number;
  readonly bytes: number;
  readonly fault: FaultKind | undefined;
}

const DEFAULT_WORKSPACE: Workspace = {
  teamId: 'T1',
  teamDomain: 't',
  appId: 'A1',
  botId: 'B0BOT',
  botUserId: 'U0BOT',
  verificationToken: 'verification-token',
};

/** Starts an emulator listening on 127.0.0.1 and a free port unless told otherwise. */
export function startSlackEmulator(options: SlackEmulatorOptions = {}): Promise<SlackEmulator> {
  return SlackEmulator.start(options);
}

export class SlackEmulator {
  readonly workspace: Workspace;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #calls: RecordedCall[] = [];
  readonly #uploadPosts: UploadPost[] = [];
  readonly #responses: RecordedResponse[] = [];
  readonly #warnings: string[] = [];
  readonly #store = new MessageStore();
  readonly #files = new FileStore();
  readonly #directory: Directory;
  readonly #triggers = new TriggerRegistry();
  readonly #faults = new FaultInjector();
  /** Methods whose calls wait unanswered (hold()), and the calls waiting. */
  readonly #holds = new Map<string, (() => void)[]>();
  readonly #faultClock: () => number;
  readonly #responseUrls = new ResponseUrls();
  readonly #socketMode: SocketModeServer;
  #baseUrl: string | undefined;
  #lastHttpSlash: string | undefined;
  #closing: Promise<void> | undefined;
  #nextEvent = 1;

  static async start(options: SlackEmulatorOptions = {}): Promise<SlackEmulator> {
    const emulator = new SlackEmulator(options);
    await emulator.#listen(options.host ?? '127.0.0.1', options.port ?? 0);
    return emulator;
  }

  private constructor(options: SlackEmulatorOptions) {
    this.#faultClock = options.faultClock ?? Date.now;
    this.workspace = { ...DEFAULT_WORKSPACE, ...options.workspace };
    this.#directory = new Directory(this.workspace.teamId, this.workspace.botUserId);
    this.#socketMode = new SocketModeServer({
      appId: this.workspace.appId,
      ackTimeoutMs: options.ackTimeoutMs ?? 3000,
      redeliverOnAckTimeout: options.redeliverOnAckTimeout ?? false,
      spread: options.spread ?? 'newest',
    });
    this.#server = createServer((request, response) => {
      this.#route(request, response).catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end(`emulator error: ${error instanceof Error ? error.message : String(error)}`);
      });
    });
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    this.#server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
      const url = new URL(request.url ?? '/', this.baseUrl);
      if (url.pathname === '/link/' || url.pathname === '/link') {
        this.#socketMode.handleUpgrade(request, socket, head, url);
      } else {
        rejectUpgrade(socket, 404, 'Not Found');
      }
    });
  }

  async #listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('the emulator must listen on TCP');
    this.#baseUrl = `http://${urlHost(host)}:${address.port}`;
  }

  /** http://HOST:PORT */
  get baseUrl(): string {
    // Unreachable through start(), which listens before handing the emulator out.
    if (this.#baseUrl === undefined) throw new Error('the emulator is not listening');
    return this.#baseUrl;
  }

  /** For `clientOptions.slackApiUrl`. */
  get apiUrl(): string {
    return `${this.baseUrl}/api/`;
  }

  get port(): number {
    return Number(new URL(this.baseUrl).port);
  }

  // ── What happened ────────────────────────────────────────────────────────────────────────

  get calls(): readonly RecordedCall[] {
    return this.#calls;
  }

  callsTo(method: string): RecordedCall[] {
    return this.#calls.filter((call) => call.method === method);
  }

  /** Posts to response_url, in order. */
  get responses(): readonly RecordedResponse[] {
    return this.#responses;
  }

  /** Socket Mode envelopes sent, with their acks. */
  get envelopes(): readonly EnvelopeRecord[] {
    return this.#socketMode.envelopes;
  }

  /** Advisories Slack would not refuse (e.g. text above 4,000 characters). */
  get warnings(): readonly string[] {
    return this.#warnings;
  }

  /** The channel's history (top-level messages and broadcast replies), oldest first. */
  messagesIn(channel: string): StoredMessage[] {
    return this.#store.channelMessages(channel);
  }

  /** A thread's parent and replies, oldest first. */
  threadOf(channel: string, ts: string): StoredMessage[] {
    return this.#store.thread(channel, ts);
  }

  message(channel: string, ts: string): StoredMessage | undefined {
    const found = this.#store.find(channel, ts);
    return found === undefined ? undefined : structuredClone(found);
  }

  /** Every file reserved by files.getUploadURLExternal, with its bytes and where it was shared. */
  get files(): EmulatedFile[] {
    return this.#files.all();
  }

  /** POSTs to upload URLs, in order (faults and refusals included). */
  get uploadPosts(): readonly UploadPost[] {
    return this.#uploadPosts;
  }

  /** Files shared in a thread (files.completeUploadExternal with thread_ts), oldest first. */
  filesInThread(channel: string, threadTs: string): EmulatedFile[] {
    return this.files.filter((f) => f.shared?.channel === channel && f.shared.threadTs === threadTs);
  }

  ephemeralsIn(channel: string): EphemeralMessage[] {
    return this.#store.ephemerals(channel);
  }

  /**
   * Tells `listener` of every message posted, updated or deleted and every ephemeral, in order,
   * as it happens (the demo's page follows the channel this way). Returns the unsubscribe.
   */
  onChange(listener: StoreListener): () => void {
    return this.#store.subscribe(listener, (error) => {
      this.#warnings.push(`onChange listener threw and was removed: ${String(error)}`);
    });
  }

  waitFor<T>(probe: () => T | Promise<T>, timeoutMs = 2000, description = 'condition'): Promise<Found<T>> {
    return waitFor(probe, timeoutMs, description);
  }

  // ── The workspace ────────────────────────────────────────────────────────────────────────

  setUser(id: string, patch: UserPatch): void {
    this.#directory.setUser(id, patch);
  }

  setUsergroup(id: string, members: readonly string[]): void {
    this.#directory.setUsergroup(id, members);
  }

  // ── Faults ───────────────────────────────────────────────────────────────────────────────

  fault(spec: FaultSpec): void {
    this.#faults.add(spec, this.#faultClock());
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  /**
   * Holds calls to `method` unanswered and without effect until release(), as a Slack that is
   * slow to answer: a call whose client goes away meanwhile (killed) is dropped at once,
   * unrecorded, as if it had never reached Slack. `waiting()` says how many calls are held now.
   */
  hold(method: string): { waiting(): number; release(): void } {
    const waiters: (() => void)[] = [];
    this.#holds.set(method, waiters);
    return {
      waiting: () => waiters.length,
      release: () => {
        if (this.#holds.get(method) === waiters) this.#holds.delete(method);
        for (const go of waiters.splice(0)) go();
      },
    };
  }

  // ── Socket Mode ──────────────────────────────────────────────────────────────────────────

  /** Connections that would receive an envelope now. */
  get socketConnections(): number {
    return this.#socketMode.openConnections;
  }

  /** Connections accepted since start, reconnects included. */
  get connectionsOpened(): number {
    return this.#socketMode.connectionsOpened;
  }

  /** Client WebSocket pings answered with a pong, over all connections. */
  get pingsAnswered(): number {
    return this.#socketMode.pingsAnswered;
  }

  waitForSocket(timeoutMs = 10_000): Promise<true> {
    return this.waitFor(() => this.socketConnections > 0, timeoutMs, 'an open Socket Mode connection');
  }

  /** "User U1 types /okome status in C1." */
  slash(input: SlashCommandInput): Delivery {
    return this.#deliver('slash_commands', this.#slashPayload(input), true);
  }

  /** "U2 clicks button X" on a message (the stored one when it exists). */
  click(input: ClickInput): Delivery {
    return this.#deliver('interactive', this.#clickPayload(input), false);
  }

  /** An Events API envelope; `event` needs at least a `type`. */
  event(event: Record<string, unknown>): Delivery {
    return this.#deliver('events_api', this.#eventPayload(event), false);
  }

  /** Sends `envelopeId`'s payload again with retry_attempt + 1. */
  redeliver(envelopeId: string, reason = 'timeout'): Delivery {
    return this.#socketMode.redeliver(envelopeId, reason);
  }

  /** Closes every Socket Mode connection abruptly (no close frame); returns how many. */
  dropSocket(): number {
    return this.#socketMode.dropSockets();
  }

  /** Sends {type:'disconnect', reason}; the client reconnects via apps.connections.open. */
  sendDisconnect(reason: DisconnectReason = 'refresh_requested'): number {
    return this.#socketMode.sendDisconnect(reason);
  }

  // ── HTTP mode ────────────────────────────────────────────────────────────────────────────

  /** Posts a slash command to an HTTPReceiver endpoint, signed as Slack signs. */
  httpSlash(
    targetUrl: string,
    signingSecret: string,
    input: SlashCommandInput,
    options: SignedRequestOptions = {},
  ): Promise<ReceiverReply> {
    const body = formEncode(this.#slashPayload(input));
    this.#lastHttpSlash = body;
    return postToApp(targetUrl, 'application/x-www-form-urlencoded', body, signingSecret, options);
  }

  /**
   * Slack's HTTP redelivery: the same slash-command body again (same trigger_id), freshly
   * signed, with x-slack-retry-num / x-slack-retry-reason.
   */
  httpRetryLastSlash(
    targetUrl: string,
    signingSecret: string,
    options: SignedRequestOptions & { readonly retryNum: number },
  ): Promise<ReceiverReply> {
    const body = this.#lastHttpSlash;
    if (body === undefined) throw new Error('no slash command was sent over HTTP yet');
    return postToApp(targetUrl, 'application/x-www-form-urlencoded', body, signingSecret, {
      retryReason: 'http_timeout',
      ...options,
    });
  }

  /** Posts a block_actions interaction (`payload=<json>`) to an HTTPReceiver endpoint. */
  httpClick(
    targetUrl: string,
    signingSecret: string,
    input: ClickInput,
    options: SignedRequestOptions = {},
  ): Promise<ReceiverReply> {
    const body = formEncode({ payload: JSON.stringify(this.#clickPayload(input)) });
    return postToApp(targetUrl, 'application/x-www-form-urlencoded', body, signingSecret, options);
  }

  /** Posts an Events API callback (JSON) to an HTTPReceiver endpoint. */
  httpEvent(
    targetUrl: string,
    signingSecret: string,
    event: Record<string, unknown>,
    options: SignedRequestOptions = {},
  ): Promise<ReceiverReply> {
    const body = JSON.stringify(this.#eventPayload(event));
    return postToApp(targetUrl, 'application/json', body, signingSecret, options);
  }

  /** Stops everything: pending acks, WebSockets, keep-alive connections, the listener. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#socketMode.close();
      this.#server.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
    });
    return this.#closing;
  }

  // ── Internals ────────────────────────────────────────────────────────────────────────────

  #deliver(type: EnvelopeType, payload: Record<string, unknown>, acceptsResponsePayload: boolean): Delivery {
    return this.#socketMode.deliver(type, payload, { acceptsResponsePayload });
  }

  #slashPayload(input: SlashCommandInput): Record<string, string> {
    const origin = this.#interaction({
      kind: 'slash_command',
      channelId: input.channelId,
      userId: input.userId,
      messageTs: undefined,
    });
    return buildSlashCommandPayload(input, this.workspace, origin);
  }

  #clickPayload(input: ClickInput): Record<string, unknown> {
    const origin = this.#interaction({
      kind: 'block_actions',
      channelId: input.channelId,
      userId: input.userId,
      messageTs: input.messageTs,
    });
    const message = input.seen ?? this.#store.find(input.channelId, input.messageTs);
    return buildBlockActionsPayload(input, message, this.workspace, origin, Date.now());
  }

  #eventPayload(event: Record<string, unknown>): Record<string, unknown> {
    if (typeof event.type !== 'string') throw new Error('an Events API event needs a string `type`');
    const eventId = `Ev${String(this.#nextEvent).padStart(8, '0')}`;
    this.#nextEvent += 1;
    return buildEventCallbackPayload(event, this.workspace, eventId, Date.now());
  }

  /** Issues what Slack hands out with each interaction: a response_url and a trigger_id. */
  #interaction(origin: ResponseOrigin): InteractionContext {
    const id = this.#responseUrls.issue(origin);
    return {
      userName: this.#directory.userName(origin.userId),
      channelName: origin.channelId.toLowerCase(),
      responseUrl: `${this.baseUrl}/response/${id}`,
      triggerId: this.#triggers.issue(Date.now()),
    };
  }

  async #route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { pathname } = new URL(request.url ?? '/', this.baseUrl);
    if (request.method === 'POST' && pathname.startsWith('/api/')) {
      await this.#webApi(decodeURIComponent(pathname.slice('/api/'.length)), request, response);
      return;
    }
    if (request.method === 'POST' && pathname.startsWith('/response/')) {
      await this.#responseUrl(pathname.slice('/response/'.length), request, response);
      return;
    }
    if (request.method === 'POST' && pathname.startsWith('/upload/')) {
      await this.#upload(pathname.slice('/upload/'.length), request, response);
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  }

  async #webApi(method: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request);
    const held = this.#holds.get(method);
    if (held !== undefined) {
      const gone = await new Promise<boolean>((resolve) => {
        const go = () => {
          request.socket.off('close', drop);
          resolve(false);
        };
        const drop = () => {
          held.splice(held.indexOf(go), 1);
          resolve(true);
        };
        held.push(go);
        request.socket.once('close', drop);
      });
      if (gone) return;
    }
    const nowMs = Date.now();
    const parsed = parseApiParams(request.headers['content-type'], body);
    const params = parsed instanceof Error ? {} : parsed;
    const token = bearerToken(request.headers.authorization) ?? stringParam(params, 'token');
    const fault = this.#faults.take(method, this.#faultClock());
    let reply: ApiReply;
    if (fault !== undefined) {
      reply = faultReply(fault);
    } else if (parsed instanceof Error) {
      reply = { status: 200, body: { ok: false, error: 'invalid_form_data', errors: [parsed.message] } };
    } else {
      reply = answerApiCall(method, params, token, {
        workspace: this.workspace,
        store: this.#store,
        directory: this.#directory,
        triggers: this.#triggers,
        openSocketUrl: () =>
          `${this.baseUrl.replace(/^http/, 'ws')}/link/?ticket=${this.#socketMode.issueTicket()}`,
        files: this.#files,
        uploadUrl: (fileId) => `${this.baseUrl}/upload/${fileId}`,
        nowMs,
      });
    }
    const warnings = reply.warnings ?? [];
    this.#warnings.push(...warnings.map((warning) => `${method}: ${warning}`));
    const headers = { 'content-type': 'application/json; charset=utf-8', ...reply.headers };
    this.#calls.push({
      method,
      params,
      token,
      time: nowMs,
      status: reply.status,
      headers,
      response: reply.body,
      fault,
      warnings,
    });
    response.writeHead(reply.status, headers).end(JSON.stringify(reply.body));
  }

  /**
   * The upload URL: 200 once the bytes are kept (Slack answers "OK - <length>" as text); 404 for
   * a file never reserved, 400 for a second upload or a body that is not a file. A length other
   * than the one declared is kept and noted in `warnings`.
   */
  async #upload(id: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBodyBytes(request);
    const fault = this.#faults.take('upload', this.#faultClock());
    const file = this.#files.get(id);
    const parsed = uploadedBytes(request.headers['content-type'], body);
    let status = 200;
    let text: string;
    if (fault !== undefined) {
      status = faultReply(fault).status;
      text = 'fault';
    } else if (file === undefined) {
      status = 404;
      text = 'unknown upload URL';
    } else if (file.content !== undefined || parsed instanceof Error) {
      status = 400;
      text = parsed instanceof Error ? parsed.message : 'already uploaded';
    } else {
      file.content = Buffer.from(parsed.bytes);
      file.uploadedAs = parsed.as;
      if (parsed.bytes.length !== file.declaredLength) {
        this.#warnings.push(
          `upload: ${id} declared ${file.declaredLength} bytes, received ${parsed.bytes.length}`,
        );
      }
      text = `OK - ${parsed.bytes.length}`;
    }
    this.#uploadPosts.push({ fileId: id, time: Date.now(), status, bytes: body.length, fault });
    response.writeHead(status, { 'content-type': 'text/plain' }).end(text);
  }

  async #responseUrl(id: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = parseResponseBody(request.headers['content-type'], await readBody(request));
    const nowMs = Date.now();
    const fault = this.#faults.take('response_url', this.#faultClock());
    const reply =
      fault === undefined
        ? this.#responseUrls.answer(id, body, this.#store, this.workspace, nowMs)
        : responseFaultReply(fault);
    this.#warnings.push(...reply.warnings.map((warning) => `response_url: ${warning}`));
    this.#responses.push({
      id,
      url: `${this.baseUrl}/response/${id}`,
      time: nowMs,
      status: reply.status,
      body: body ?? {},
      origin: this.#responseUrls.origin(id),
      error: reply.error,
      errors: reply.errors,
      fault,
    });
    response.writeHead(reply.status, { 'content-type': reply.contentType, ...reply.headers }).end(reply.body);
  }
}

function faultReply(fault: FaultKind): ApiReply {
  switch (fault.kind) {
    case 'rate_limited':
      return {
        status: 429,
        headers: { 'retry-after': String(fault.retryAfterSec) },
        body: { ok: false, error: 'ratelimited' },
      };
    case 'http_500':
      return { status: 500, body: { ok: false, error: 'internal_error' } };
    case 'ok_false':
      return { status: 200, body: { ok: false, error: fault.error } };
  }
}

function responseFaultReply(fault: FaultKind): ResponseReply {
  const reply = faultReply(fault);
  return {
    status: reply.status,
    body: JSON.stringify(reply.body),
    contentType: 'application/json',
    headers: reply.headers ?? {},
    error: fault.kind === 'ok_false' ? fault.error : fault.kind,
    errors: [],
    warnings: [],
  };
}

function stringParam(params: Record<string, unknown>, key: string): string | undefined {
  const value = params[key];
  return typeof value === 'string' ? value : undefined;
}

/** A host as it appears in a URL: IPv6 bracketed, wildcard addresses replaced by loopback. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
