// Channels → messages, as Slack keeps them: a ts unique and increasing within its channel,
// thread replies linked by thread_ts, edits in place.

export interface StoredMessage {
  readonly channel: string;
  readonly ts: string;
  readonly text: string;
  readonly blocks: readonly unknown[] | undefined;
  /** Set on replies only (Slack also sets it on a thread's parent; `threadOf` covers that). */
  readonly threadTs: string | undefined;
  readonly replyBroadcast: boolean;
  readonly user: string | undefined;
  readonly botId: string | undefined;
  readonly metadata: unknown;
  /** Files shared with the message (files.completeUploadExternal). */
  readonly files?: readonly SharedFile[];
  readonly edits: number;
  readonly deleted: boolean;
}

export interface NewMessage {
  readonly channel: string;
  readonly text: string;
  readonly blocks: readonly unknown[] | undefined;
  readonly threadTs: string | undefined;
  readonly replyBroadcast: boolean;
  readonly user: string | undefined;
  readonly botId: string | undefined;
  readonly metadata: unknown;
  readonly files?: readonly SharedFile[];
}

export interface SharedFile {
  readonly id: string;
  readonly name: string;
  readonly title: string;
  readonly size: number;
}

/** Shown to one user only; never part of the channel's history. */
export interface EphemeralMessage {
  readonly channel: string;
  readonly user: string;
  readonly messageTs: string;
  readonly text: string;
  readonly blocks: readonly unknown[] | undefined;
  readonly threadTs: string | undefined;
  readonly via: 'chat.postEphemeral' | 'response_url';
}

/** What changed, as the emulator tells listeners (`onChange`); copies, like every read. */
export type StoreChange =
  /** Posted, updated (`edits` > 0) or deleted (`deleted`): the message as it now is. */
  | { readonly kind: 'message'; readonly message: StoredMessage }
  | { readonly kind: 'ephemeral'; readonly ephemeral: EphemeralMessage };

export type StoreListener = (change: StoreChange) => void;

interface Timestamp {
  readonly seconds: number;
  readonly sequence: number;
}

interface ChannelState {
  readonly messages: StoredMessage[];
  last: Timestamp | undefined;
}

const SEQUENCE_LIMIT = 999_999;

/** Next Slack ts after `last`: the wall clock's second, with a sequence that keeps it increasing. */
export function nextTimestamp(last: Timestamp | undefined, nowMs: number): Timestamp {
  const seconds = Math.floor(nowMs / 1000);
  if (last === undefined || seconds > last.seconds) return { seconds, sequence: 1 };
  if (last.sequence < SEQUENCE_LIMIT) return { seconds: last.seconds, sequence: last.sequence + 1 };
  return { seconds: last.seconds + 1, sequence: 1 };
}

export function formatTimestamp(ts: Timestamp): string {
  return `${ts.seconds}.${String(ts.sequence).padStart(6, '0')}`;
}

export class MessageStore {
  readonly #channels = new Map<string, ChannelState>();
  readonly #ephemerals: EphemeralMessage[] = [];
  readonly #listeners = new Set<StoreListener>();

  /**
   * Calls `listener` after every change, synchronously; returns the unsubscribe. A listener that
   * throws is unsubscribed and its error handed to `onError`: it must not break the Web API call.
   */
  subscribe(listener: StoreListener, onError: (error: unknown) => void): () => void {
    const guarded: StoreListener = (change) => {
      try {
        listener(change);
      } catch (error) {
        this.#listeners.delete(guarded);
        onError(error);
      }
    };
    this.#listeners.add(guarded);
    return () => {
      this.#listeners.delete(guarded);
    };
  }

  post(message: NewMessage, nowMs: number): StoredMessage {
    const stored: StoredMessage = {
      ...message,
      ts: this.#nextTs(message.channel, nowMs),
      edits: 0,
      deleted: false,
    };
    this.#channel(message.channel).messages.push(stored);
    this.#notify({ kind: 'message', message: stored });
    return stored;
  }

  postEphemeral(message: Omit<EphemeralMessage, 'messageTs'>, nowMs: number): EphemeralMessage {
    const stored: EphemeralMessage = { ...message, messageTs: this.#nextTs(message.channel, nowMs) };
    this.#ephemerals.push(stored);
    this.#notify({ kind: 'ephemeral', ephemeral: stored });
    return stored;
  }

  ephemerals(channel: string): EphemeralMessage[] {
    return this.#ephemerals.filter((message) => message.channel === channel).map((m) => structuredClone(m));
  }

  find(channel: string, ts: string): StoredMessage | undefined {
    return this.#channels.get(channel)?.messages.find((message) => message.ts === ts && !message.deleted);
  }

  /** Replaces only the fields given, as chat.update does; undefined when the message is unknown. */
  update(
    channel: string,
    ts: string,
    patch: { readonly text?: string | undefined; readonly blocks?: readonly unknown[] | undefined },
  ): StoredMessage | undefined {
    return this.#replace(channel, ts, (message) => ({
      ...message,
      text: patch.text ?? message.text,
      blocks: patch.blocks ?? message.blocks,
      edits: message.edits + 1,
    }));
  }

  delete(channel: string, ts: string): StoredMessage | undefined {
    return this.#replace(channel, ts, (message) => ({ ...message, deleted: true }));
  }

  /** The channel's history: top-level messages and broadcast replies, oldest first. */
  channelMessages(channel: string): StoredMessage[] {
    const messages = this.#channels.get(channel)?.messages ?? [];
    return messages.filter((m) => !m.deleted && (m.threadTs === undefined || m.replyBroadcast)).map(snapshot);
  }

  /** The parent and its replies, oldest first, as conversations.replies returns them. */
  thread(channel: string, ts: string): StoredMessage[] {
    const messages = this.#channels.get(channel)?.messages ?? [];
    return messages.filter((m) => !m.deleted && (m.ts === ts || m.threadTs === ts)).map(snapshot);
  }

  #replace(
    channel: string,
    ts: string,
    change: (message: StoredMessage) => StoredMessage,
  ): StoredMessage | undefined {
    const messages = this.#channels.get(channel)?.messages;
    const index = messages?.findIndex((message) => message.ts === ts && !message.deleted) ?? -1;
    const current = messages?.[index];
    if (messages === undefined || current === undefined) return undefined;
    const next = change(current);
    messages[index] = next;
    this.#notify({ kind: 'message', message: next });
    return next;
  }

  #notify(change: StoreChange): void {
    if (this.#listeners.size === 0) return;
    for (const listener of [...this.#listeners]) listener(structuredClone(change));
  }

  #nextTs(channel: string, nowMs: number): string {
    const state = this.#channel(channel);
    state.last = nextTimestamp(state.last, nowMs);
    return formatTimestamp(state.last);
  }

  #channel(channel: string): ChannelState {
    let state = this.#channels.get(channel);
    if (state === undefined) {
      state = { messages: [], last: undefined };
      this.#channels.set(channel, state);
    }
    return state;
  }
}

/** Callers get copies so that a test cannot change what the emulator holds. */
function snapshot(message: StoredMessage): StoredMessage {
  return structuredClone(message);
}
