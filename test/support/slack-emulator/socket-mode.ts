// Slack's side of Socket Mode: single-use tickets from apps.connections.open, hello on connect,
// envelopes out, acks in, the 3 s ack deadline that the client does not enforce, redelivery with
// retry_attempt, and disconnects (polite or abrupt).

import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { z } from 'zod';
import { acceptWebSocket, rejectUpgrade, type WebSocketConnection } from './web-socket-server.js';

export type EnvelopeType = 'slash_commands' | 'interactive' | 'events_api';
export type DisconnectReason = 'refresh_requested' | 'warning' | 'link_disabled';

export interface AckResult {
  readonly payload: Record<string, unknown>;
  readonly latencyMs: number;
}

export interface EnvelopeRecord {
  readonly envelopeId: string;
  /** The first delivery's envelope id: the same for every redelivery of one payload. */
  readonly firstEnvelopeId: string;
  readonly type: EnvelopeType;
  readonly payload: Record<string, unknown>;
  readonly acceptsResponsePayload: boolean;
  readonly retryAttempt: number;
  readonly retryReason: string | undefined;
  readonly sentAt: number;
  /** False when no connection was open: Slack drops such an envelope, and so do we. */
  readonly delivered: boolean;
  /** Which connection got it (1 = the first opened); undefined when none was open. */
  readonly connection: number | undefined;
  readonly ack: (AckResult & { readonly late: boolean }) | undefined;
  readonly timedOut: boolean;
}

export interface Delivery {
  readonly envelopeId: string;
  /** Resolves on the app's ack; rejects with AckTimeoutError or EnvelopeLostError. */
  readonly ack: Promise<AckResult>;
}

export class AckTimeoutError extends Error {
  override readonly name = 'AckTimeoutError';
  constructor(
    readonly envelopeId: string,
    readonly timeoutMs: number,
  ) {
    super(`envelope ${envelopeId} was not acked within ${timeoutMs} ms (Slack shows the user a timeout)`);
  }
}

export class EnvelopeLostError extends Error {
  override readonly name = 'EnvelopeLostError';
  constructor(readonly envelopeId: string) {
    super(
      `envelope ${envelopeId} was lost: no Socket Mode connection was open (Slack drops it too); ` +
        'await emulator.waitForSocket() before sending',
    );
  }
}

export interface SocketModeOptions {
  readonly appId: string;
  readonly ackTimeoutMs: number;
  readonly redeliverOnAckTimeout: boolean;
  /**
   * Which open connection gets an envelope: the newest (default), or each in turn, as Slack
   * spreads envelopes across an app's connections (replicas each get some).
   */
  readonly spread?: 'newest' | 'round-robin';
}

interface DeliverOptions {
  readonly acceptsResponsePayload: boolean;
  readonly retryAttempt?: number;
  readonly retryReason?: string;
  readonly firstEnvelopeId?: string;
}

interface Link {
  readonly socket: WebSocketConnection;
  /** 1 for the first connection opened, and so on. */
  readonly id: number;
  /** Told to disconnect: no new envelopes go there. */
  draining: boolean;
}

interface PendingAck {
  readonly resolve: (result: AckResult) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

type MutableEnvelope = { -readonly [K in keyof EnvelopeRecord]: EnvelopeRecord[K] };

const AckMessage = z.object({
  envelope_id: z.string().min(1),
  payload: z.record(z.string(), z.unknown()).optional(),
});

export class SocketModeServer {
  readonly #options: SocketModeOptions;
  readonly #links = new Set<Link>();
  readonly #tickets = new Set<string>();
  readonly #envelopes: MutableEnvelope[] = [];
  readonly #pending = new Map<string, PendingAck>();
  readonly #sentAtPerf = new Map<string, number>();
  readonly #strayMessages: string[] = [];
  #connectionsOpened = 0;
  #delivered = 0;
  #pingsAnswered = 0;
  #nextTicket = 1;

  constructor(options: SocketModeOptions) {
    this.#options = options;
  }

  get envelopes(): readonly EnvelopeRecord[] {
    return this.#envelopes;
  }

  /** Client messages that were not an ack of a known envelope. */
  get strayMessages(): readonly string[] {
    return this.#strayMessages;
  }

  /** Connections that would receive a new envelope. */
  get openConnections(): number {
    return [...this.#links].filter((link) => link.socket.isOpen && !link.draining).length;
  }

  get connectionsOpened(): number {
    return this.#connectionsOpened;
  }

  get pingsAnswered(): number {
    return this.#pingsAnswered;
  }

  issueTicket(): string {
    const ticket = `ticket-${this.#nextTicket}`;
    this.#nextTicket += 1;
    this.#tickets.add(ticket);
    return ticket;
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    const ticket = url.searchParams.get('ticket');
    if (ticket === null || !this.#tickets.delete(ticket)) {
      rejectUpgrade(socket, 401, 'Unauthorized');
      return;
    }
    const link: { current?: Link } = {};
    const connection = acceptWebSocket(request, socket, head, {
      onText: (text) => this.#receive(text),
      onPing: () => {
        this.#pingsAnswered += 1;
      },
      onClose: () => {
        if (link.current !== undefined) this.#links.delete(link.current);
      },
    });
    if (connection === undefined) return;
    this.#connectionsOpened += 1;
    link.current = { socket: connection, id: this.#connectionsOpened, draining: false };
    this.#links.add(link.current);
    connection.sendText(
      JSON.stringify({
        type: 'hello',
        num_connections: this.openConnections,
        debug_info: { host: 'local' },
        connection_info: { app_id: this.#options.appId },
      }),
    );
  }

  deliver(type: EnvelopeType, payload: Record<string, unknown>, options: DeliverOptions): Delivery {
    const envelopeId = randomUUID();
    const retryAttempt = options.retryAttempt ?? 0;
    const record: MutableEnvelope = {
      envelopeId,
      firstEnvelopeId: options.firstEnvelopeId ?? envelopeId,
      type,
      payload,
      acceptsResponsePayload: options.acceptsResponsePayload,
      retryAttempt,
      retryReason: options.retryReason,
      sentAt: Date.now(),
      delivered: false,
      connection: undefined,
      ack: undefined,
      timedOut: false,
    };
    this.#envelopes.push(record);
    const link = this.#options.spread === 'round-robin' ? this.#nextLink() : this.#newestLink();
    record.connection = link?.id;
    const ack =
      link === undefined
        ? Promise.reject(new EnvelopeLostError(envelopeId))
        : new Promise<AckResult>((resolve, reject) => {
            const timer = setTimeout(() => this.#expire(record), this.#options.ackTimeoutMs);
            this.#pending.set(envelopeId, { resolve, reject, timer });
          });
    // A test may ignore the ack; its rejection must not become an unhandled rejection.
    ack.catch(() => undefined);
    if (link !== undefined) {
      this.#sentAtPerf.set(envelopeId, performance.now());
      // Events carry retry fields from the first delivery on; other types only when retried.
      const withRetry = type === 'events_api' || retryAttempt > 0;
      link.socket.sendText(
        JSON.stringify({
          envelope_id: envelopeId,
          type,
          payload,
          accepts_response_payload: options.acceptsResponsePayload,
          ...(withRetry ? { retry_attempt: retryAttempt, retry_reason: options.retryReason ?? '' } : {}),
        }),
      );
      record.delivered = true;
    }
    return { envelopeId, ack };
  }

  /** Sends the payload of `envelopeId` again, one retry_attempt higher, as Slack does. */
  redeliver(envelopeId: string, reason = 'timeout'): Delivery {
    const original = this.#envelopes.find((envelope) => envelope.envelopeId === envelopeId);
    if (original === undefined) throw new Error(`unknown envelope ${envelopeId}`);
    const attempts = this.#envelopes.filter(
      (envelope) => envelope.firstEnvelopeId === original.firstEnvelopeId,
    );
    return this.deliver(original.type, original.payload, {
      acceptsResponsePayload: original.acceptsResponsePayload,
      retryAttempt: Math.max(...attempts.map((envelope) => envelope.retryAttempt)) + 1,
      retryReason: reason,
      firstEnvelopeId: original.firstEnvelopeId,
    });
  }

  /** Drops every connection without a close frame; returns how many. */
  dropSockets(): number {
    const links = [...this.#links];
    for (const link of links) link.socket.destroy();
    return links.length;
  }

  /** Asks every connection to go away; the client then opens a new one. Returns how many. */
  sendDisconnect(reason: DisconnectReason): number {
    let told = 0;
    for (const link of this.#links) {
      if (!link.socket.isOpen || link.draining) continue;
      link.socket.sendText(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'local' } }));
      link.draining = true;
      told += 1;
    }
    return told;
  }

  close(): void {
    for (const [envelopeId, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error(`the emulator closed before envelope ${envelopeId} was acked`));
    }
    this.#pending.clear();
    this.dropSockets();
  }

  #nextLink(): Link | undefined {
    const open = [...this.#links].filter((link) => link.socket.isOpen && !link.draining);
    this.#delivered += 1;
    return open[this.#delivered % Math.max(open.length, 1)];
  }

  #newestLink(): Link | undefined {
    return [...this.#links].filter((link) => link.socket.isOpen && !link.draining).at(-1);
  }

  #receive(text: string): void {
    let parsed: z.infer<typeof AckMessage> | undefined;
    try {
      const result = AckMessage.safeParse(JSON.parse(text));
      parsed = result.success ? result.data : undefined;
    } catch {
      parsed = undefined;
    }
    const record = this.#envelopes.find((envelope) => envelope.envelopeId === parsed?.envelope_id);
    if (parsed === undefined || record === undefined) {
      this.#strayMessages.push(text);
      return;
    }
    const sentAtPerf = this.#sentAtPerf.get(record.envelopeId) ?? performance.now();
    const result: AckResult = { payload: parsed.payload ?? {}, latencyMs: performance.now() - sentAtPerf };
    const pending = this.#pending.get(record.envelopeId);
    this.#pending.delete(record.envelopeId);
    record.ack = { ...result, late: pending === undefined };
    if (pending !== undefined) {
      clearTimeout(pending.timer);
      pending.resolve(result);
    }
  }

  #expire(record: MutableEnvelope): void {
    const pending = this.#pending.get(record.envelopeId);
    if (pending === undefined) return;
    this.#pending.delete(record.envelopeId);
    record.timedOut = true;
    pending.reject(new AckTimeoutError(record.envelopeId, this.#options.ackTimeoutMs));
    if (this.#options.redeliverOnAckTimeout && record.retryAttempt === 0) {
      this.redeliver(record.envelopeId, 'timeout');
    }
  }
}
