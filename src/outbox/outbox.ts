import { ErrorCode, OkomeError } from '../errors.js';
import type { OutboxCounts, OutboxStore } from '../store/store-port.js';
import { type Clock, systemClock } from './clock.js';
import { Deliverer, type DelivererOptions, type DeliveryLoop, type LiveStats } from './deliverer.js';
import {
  decodePayload,
  encodePayload,
  encodeUpload,
  type MessagePayload,
  mergePayload,
  type UploadPayload,
} from './payload.js';

export interface OutboxStats extends OutboxCounts, LiveStats {}

/**
 * Everything okome-bot says in Slack goes through here: each call is an insert in the store,
 * durable before Slack sees anything (await it); the Deliverer sends it later. Call these
 * inside `store.atomically(...)` to commit a message together with the state it reports
 * (e.g. a new incident and its root post).
 *
 * Order is kept per queue: `channel:<thread root ref>` for a thread and its root message
 * (posts, replies and updates of any of them), `channel:@user` for ephemerals. An urgent post
 * (MessagePayload.urgent) is a queue of its own, even in a thread: it skips ahead.
 */
export class Outbox {
  private readonly clock: Clock;

  constructor(
    private readonly store: OutboxStore,
    private readonly loop: DeliveryLoop,
    clock: Clock = systemClock,
  ) {
    this.clock = clock;
  }

  /** A new message (a thread reply when `threadRef` is given); returns its ref for updates and replies. */
  async enqueuePost(input: {
    channel: string;
    threadRef?: string;
    payload: MessagePayload;
  }): Promise<string> {
    const ref = await this.store.atomically(async () => {
      const now = this.clock.now();
      let rootRef: string | null = null;
      if (input.threadRef !== undefined) {
        const parent = await this.requireMessage(input.threadRef);
        if (parent.channel !== input.channel) {
          throw new OkomeError(
            ErrorCode.OutboxUnknownMessage,
            `outbox: thread ${input.threadRef} is in ${parent.channel}, not in ${input.channel}`,
          );
        }
        // Slack threads are one level deep: a reply to a reply goes to the root's thread.
        rootRef = parent.threadRef ?? parent.ref;
      }
      const messageRef = await this.store.createMessage({ channel: input.channel, threadRef: rootRef, now });
      await this.store.insertOutbox({
        channel: input.channel,
        // An urgent reply gets a queue of its own: it must not wait behind its thread's earlier
        // replies (a failover notice broadcast into a reopened incident's busy thread).
        queueKey: queueKeyOf(
          input.channel,
          input.payload.urgent === true ? messageRef : (rootRef ?? messageRef),
        ),
        op: 'post',
        messageRef,
        threadRef: rootRef,
        user: null,
        payload: encodePayload(input.payload),
        now,
      });
      return messageRef;
    });
    this.loop.wake();
    return ref;
  }

  /**
   * Replaces the content of a message. Coalesces: if the message's last pending row (its post,
   * or an earlier update) is not yet in flight, the payload is merged into that row and only
   * the latest state is sent; otherwise a new update row follows it.
   */
  async enqueueUpdate(input: { messageRef: string; payload: MessagePayload }): Promise<void> {
    await this.store.atomically(async () => {
      const message = await this.requireMessage(input.messageRef);
      const pending = await this.store.pendingRowsForMessage(input.messageRef);
      const last = pending[pending.length - 1];
      // A row claimed by a replica (this one or another) may be on the wire: not merged into.
      const claimed = last !== undefined && last.claimedBy !== null && last.leaseUntil > this.clock.now();
      if (last !== undefined && !claimed && !this.loop.isInFlight(last.id)) {
        const earlier = decodePayload(last.payload);
        const merged = earlier === undefined ? input.payload : mergePayload(earlier, input.payload);
        await this.store.replacePayload(last.id, encodePayload(merged));
        return;
      }
      await this.store.insertOutbox({
        channel: message.channel,
        queueKey: queueKeyOf(message.channel, message.threadRef ?? message.ref),
        op: 'update',
        messageRef: message.ref,
        threadRef: null,
        user: null,
        payload: encodePayload(input.payload),
        now: this.clock.now(),
      });
    });
    this.loop.wake();
  }

  /**
   * A file shared in a thread (or the channel), in the thread's queue so it follows what was
   * said before it; paced like a post. Returns the ref of the message that shares it.
   */
  async enqueueUpload(input: {
    channel: string;
    threadRef?: string;
    upload: UploadPayload;
  }): Promise<string> {
    const ref = await this.store.atomically(async () => {
      const now = this.clock.now();
      let rootRef: string | null = null;
      if (input.threadRef !== undefined) {
        const parent = await this.requireMessage(input.threadRef);
        if (parent.channel !== input.channel) {
          throw new OkomeError(
            ErrorCode.OutboxUnknownMessage,
            `outbox: thread ${input.threadRef} is in ${parent.channel}, not in ${input.channel}`,
          );
        }
        rootRef = parent.threadRef ?? parent.ref;
      }
      const messageRef = await this.store.createMessage({ channel: input.channel, threadRef: rootRef, now });
      await this.store.insertOutbox({
        channel: input.channel,
        queueKey: queueKeyOf(input.channel, rootRef ?? messageRef),
        op: 'upload',
        messageRef,
        threadRef: rootRef,
        user: null,
        payload: encodeUpload(input.upload),
        now,
      });
      return messageRef;
    });
    this.loop.wake();
    return ref;
  }

  /** A message only `user` sees; not paced with posts (Slack limits it per workspace). */
  async enqueueEphemeral(input: { channel: string; user: string; payload: MessagePayload }): Promise<void> {
    await this.store.insertOutbox({
      channel: input.channel,
      queueKey: `${input.channel}:@${input.user}`,
      op: 'ephemeral',
      messageRef: null,
      threadRef: null,
      user: input.user,
      payload: encodePayload(input.payload),
      now: this.clock.now(),
    });
    this.loop.wake();
  }

  /**
   * Plain text to the user who clicked or typed, where they did it; nowhere when Slack gave no
   * channel (a click from a message Slack no longer places).
   */
  async tellUser(where: { channelId: string | undefined; userId: string }, text: string): Promise<void> {
    if (where.channelId === undefined) return;
    await this.enqueueEphemeral({ channel: where.channelId, user: where.userId, payload: { text } });
  }

  /** Slack's ts of a delivered message; undefined while it is pending (or unknown). */
  async tsOf(messageRef: string): Promise<string | undefined> {
    return (await this.store.message(messageRef))?.ts ?? undefined;
  }

  pendingCount(): Promise<number> {
    return this.store.pendingCount();
  }

  async stats(): Promise<OutboxStats> {
    return { ...(await this.store.outboxCounts()), ...this.loop.liveStats() };
  }

  private async requireMessage(ref: string) {
    const message = await this.store.message(ref);
    if (message === undefined) {
      throw new OkomeError(ErrorCode.OutboxUnknownMessage, `outbox: no message with ref ${ref}`);
    }
    return message;
  }
}

/** Wires an Outbox to its Deliverer; call `deliverer.start()` when the app starts. */
export function createOutbox(options: DelivererOptions): { outbox: Outbox; deliverer: Deliverer } {
  const deliverer = new Deliverer(options);
  return { outbox: new Outbox(options.store, deliverer, options.clock ?? systemClock), deliverer };
}

export function queueKeyOf(channel: string, rootRef: string): string {
  return `${channel}:${rootRef}`;
}
