// A wire-level Slack for tests: the real @slack/bolt talks to it over HTTP and WebSocket.
export {
  BLOCK_KIT_LIMITS,
  checkMessage,
  checkView,
  type MessageVerdict,
  type ViewVerdict,
} from './block-kit-limits.js';
export type { UserPatch } from './directory.js';
export {
  type RecordedCall,
  SlackEmulator,
  type SlackEmulatorOptions,
  startSlackEmulator,
  type UploadPost,
} from './emulator.js';
export type { FaultKind, FaultSpec } from './faults.js';
export type { EmulatedFile } from './files.js';
export {
  type ReceiverReply,
  type SignatureMode,
  type SignedRequestOptions,
  signSlackRequest,
} from './http-mode.js';
export type { EphemeralMessage, SharedFile, StoreChange, StoredMessage } from './message-store.js';
export type { ClickInput, SlashCommandInput, Workspace } from './payloads.js';
export type { RecordedResponse, ResponseOrigin } from './response-url.js';
export {
  type AckResult,
  AckTimeoutError,
  type Delivery,
  type DisconnectReason,
  EnvelopeLostError,
  type EnvelopeRecord,
  type EnvelopeType,
} from './socket-mode.js';
export { type Found, waitFor } from './wait-for.js';
