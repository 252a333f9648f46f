import type { BlockAction, MessageInput } from './block-kit-types.js';

/**
 * The Block Kit gallery: a page that renders given messages with renderMessage, for eyeballing
 * the renderer and for the browser tests (which drive it through this global). DOM-free types.
 */

export const GALLERY_GLOBAL = 'okomeGallery';

export interface GalleryGroup {
  /** Shown above the messages; also the group's `data-group` attribute. */
  readonly name: string;
  /** The first message is the parent; the others are its thread's replies. */
  readonly messages: readonly MessageInput[];
}

export interface Gallery {
  /** Replaces the page's content with these groups (and forgets the actions). `users` maps user ids to names. */
  show(groups: readonly GalleryGroup[], users?: Readonly<Record<string, string>>): void;
  /** Every action the renderer reported since the last show(), oldest first. */
  readonly actions: BlockAction[];
}
