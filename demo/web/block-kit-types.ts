/**
 * What renderMessage takes and reports. Types only and DOM-free, so node-side code (the
 * browser tests, the demo server) can name them without the DOM library.
 */

/** A message as the emulator holds it; every field may be missing or null. */
export interface MessageInput {
  readonly text?: string | null | undefined;
  readonly blocks?: readonly unknown[] | null | undefined;
  /** The author's user id; its name comes from RenderOptions.userName. */
  readonly user?: string | null | undefined;
  /** A display name that wins over `user` (a bot's username). */
  readonly username?: string | null | undefined;
  /** Slack's `seconds.sequence` timestamp. */
  readonly ts?: string | null | undefined;
  readonly edited?: boolean | null | undefined;
}

/** A click on a button or an overflow option, after its confirm dialog (if any) was confirmed. */
export interface BlockAction {
  readonly actionId: string;
  readonly value?: string;
  readonly blockId?: string;
}

export interface RenderOptions {
  onAction(action: BlockAction): void;
  /** The display name for `<@U…>` and a message's author; the id is shown when absent. */
  userName?(id: string): string | undefined;
  /** The channel name for `<#C…>` (without `#`); the token's own label or the id otherwise. */
  channelName?(id: string): string | undefined;
}
