/**
 * What the demo's server and its page exchange (JSON over /api/*, SSE on /api/events).
 * Types only: the page imports them without pulling in a byte of the server.
 */

export const PERSONA_IDS = ['requester', 'approver1', 'approver2', 'stranger'] as const;
export type PersonaId = (typeof PERSONA_IDS)[number];

export interface Persona {
  readonly id: PersonaId;
  /** The Slack user id the emulator uses for this person. */
  readonly userId: string;
  readonly name: string;
  /** Why this person may or may not approve, in words for the page. */
  readonly role: string;
}

/** One Slack message as the emulator holds it. */
export interface ApiMessage {
  readonly channel: string;
  readonly ts: string;
  /** Set on thread replies only. */
  readonly threadTs: string | null;
  readonly text: string;
  readonly blocks: readonly unknown[] | null;
  readonly user: string | null;
  readonly botId: string | null;
  readonly edits: number;
  /** A deleted message is sent once with this set, so the page can drop it. */
  readonly deleted: boolean;
}

/** A channel message (root) with its thread replies, oldest first. */
export interface ApiThread {
  readonly root: ApiMessage;
  readonly replies: readonly ApiMessage[];
}

export interface ApiEphemeral {
  readonly persona: PersonaId;
  readonly channel: string;
  readonly ts: string;
  readonly threadTs: string | null;
  readonly text: string;
  readonly blocks: readonly unknown[] | null;
}

export interface CommandHint {
  /** What to type, e.g. "/okome check <check-id | node | incident-number>". */
  readonly usage: string;
  readonly help: string;
}

export interface FaultView {
  /** "service-stop:pi-b:redis-server": name, node and service, joined. */
  readonly id: string;
  readonly name: string;
  readonly node: string | null;
  readonly service: string | null;
  readonly label: string;
  /** The runbook incident it provokes ("2"), or what it shows ("failover"). */
  readonly shows: string;
  readonly applied: boolean;
}

export interface LabView {
  /** Pis holding the VIP now: none, one, or both (split brain). */
  readonly vipHolders: readonly string[];
  /** Per Pi, each unit's `systemctl is-active` answer. */
  readonly units: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly orchestrator: string;
  /** ISO time of the reading. */
  readonly at: string;
}

export interface DemoState {
  readonly channel: string;
  readonly personas: readonly Persona[];
  readonly commands: readonly CommandHint[];
  readonly messages: readonly ApiThread[];
  readonly ephemerals: Readonly<Record<PersonaId, readonly ApiEphemeral[]>>;
  readonly faults: readonly FaultView[];
  /** null until the first reading. */
  readonly lab: LabView | null;
}

/**
 * Server-sent events on /api/events, by event name: `state` (the whole DemoState, first on
 * every connection), `message` (an ApiMessage upsert), `ephemeral` (an ApiEphemeral),
 * `faults` (FaultView[]), `lab` (LabView).
 */
export interface DemoEvents {
  readonly state: DemoState;
  readonly message: ApiMessage;
  readonly ephemeral: ApiEphemeral;
  readonly faults: readonly FaultView[];
  readonly lab: LabView;
}

/** POST bodies. */
export interface CommandRequest {
  readonly persona: PersonaId;
  /** "/okome status" or just "status". */
  readonly text: string;
}

export interface ClickRequest {
  readonly persona: PersonaId;
  readonly channel: string;
  readonly ts: string;
  readonly actionId: string;
  readonly value?: string;
  readonly blockId?: string;
}

export interface FaultRequest {
  readonly name: string;
  readonly node?: string;
  readonly service?: string;
  readonly action: 'apply' | 'revert';
}

export interface AlertRequest {
  readonly status?: 'firing' | 'resolved';
}
