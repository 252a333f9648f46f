// The payloads Slack sends to an app, field for field (see shared/docs/slack-wire.md). The same
// objects travel in Socket Mode envelopes and, form-encoded, in HTTP mode.

import { isRecord } from './block-kit-limits.js';
import type { StoredMessage } from './message-store.js';

export interface Workspace {
  readonly teamId: string;
  readonly teamDomain: string;
  readonly appId: string;
  readonly botId: string;
  readonly botUserId: string;
  /** The deprecated verification token; Bolt ignores it but Slack still sends it. */
  readonly verificationToken: string;
}

/** Who acted and where, with what Slack hands out for each interaction. */
export interface InteractionContext {
  readonly userName: string;
  readonly channelName: string;
  readonly responseUrl: string;
  readonly triggerId: string;
}

export interface SlashCommandInput {
  readonly userId: string;
  readonly channelId: string;
  /** Defaults to '/okome'. */
  readonly command?: string;
  readonly text?: string;
  readonly teamId?: string;
}

export interface ClickInput {
  readonly userId: string;
  readonly channelId: string;
  readonly messageTs: string;
  readonly actionId: string;
  /** Taken from the stored message when omitted. */
  readonly blockId?: string;
  /** Taken from the stored message's button when omitted. */
  readonly value?: string;
  readonly teamId?: string;
  /**
   * The message as the clicking user's client still shows it: a stale view (the message was
   * updated since, e.g. its buttons removed) still sends the old button, as Slack clients do.
   */
  readonly seen?: StoredMessage;
}

/** A slash command's fields; every value is a string, as in the form Slack posts. */
export function buildSlashCommandPayload(
  input: SlashCommandInput,
  workspace: Workspace,
  interaction: InteractionContext,
): Record<string, string> {
  return {
    token: workspace.verificationToken,
    team_id: input.teamId ?? workspace.teamId,
    team_domain: workspace.teamDomain,
    channel_id: input.channelId,
    channel_name: interaction.channelName,
    user_id: input.userId,
    user_name: interaction.userName,
    command: input.command ?? '/okome',
    text: input.text ?? '',
    api_app_id: workspace.appId,
    is_enterprise_install: 'false',
    response_url: interaction.responseUrl,
    trigger_id: interaction.triggerId,
  };
}

export interface ButtonInMessage {
  readonly blockId: string | undefined;
  readonly element: Record<string, unknown>;
}

/** Where a button with `actionId` sits in `blocks` (actions elements or a section accessory). */
export function findButton(blocks: readonly unknown[], actionId: string): ButtonInMessage | undefined {
  for (const block of blocks) {
    if (!isRecord(block)) continue;
    const candidates = [
      ...(Array.isArray(block.elements) ? block.elements : []),
      ...(block.accessory === undefined ? [] : [block.accessory]),
    ];
    for (const element of candidates) {
      if (isRecord(element) && element.action_id === actionId) {
        return { blockId: typeof block.block_id === 'string' ? block.block_id : undefined, element };
      }
    }
  }
  return undefined;
}

/**
 * A block_actions payload for a button click. When the message is known, the button must be in
 * it (a test clicking a button that is not there is a broken test) and fills block_id, text,
 * style and value the way Slack would.
 */
export function buildBlockActionsPayload(
  input: ClickInput,
  message: StoredMessage | undefined,
  workspace: Workspace,
  interaction: InteractionContext,
  nowMs: number,
): Record<string, unknown> {
  const button = message === undefined ? undefined : findButton(message.blocks ?? [], input.actionId);
  if (message !== undefined && button === undefined) {
    throw new Error(
      `no element with action_id ${JSON.stringify(input.actionId)} in message ${message.ts} of ${message.channel}`,
    );
  }
  const teamId = input.teamId ?? workspace.teamId;
  const value = input.value ?? stringField(button?.element, 'value');
  const style = stringField(button?.element, 'style');
  const action: Record<string, unknown> = {
    action_id: input.actionId,
    block_id: input.blockId ?? button?.blockId ?? 'actions',
    type: stringField(button?.element, 'type') ?? 'button',
    text: button?.element.text ?? { type: 'plain_text', text: input.actionId, emoji: true },
    action_ts: slackTime(nowMs),
    ...(value === undefined ? {} : { value }),
    ...(style === undefined ? {} : { style }),
  };
  return {
    type: 'block_actions',
    user: { id: input.userId, username: interaction.userName, name: interaction.userName, team_id: teamId },
    api_app_id: workspace.appId,
    token: workspace.verificationToken,
    container: {
      type: 'message',
      message_ts: input.messageTs,
      channel_id: input.channelId,
      is_ephemeral: false,
    },
    trigger_id: interaction.triggerId,
    team: { id: teamId, domain: workspace.teamDomain },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: input.channelId, name: interaction.channelName },
    message: {
      type: 'message',
      ts: input.messageTs,
      text: message?.text ?? '',
      user: message?.user ?? workspace.botUserId,
      bot_id: message?.botId ?? workspace.botId,
      blocks: message?.blocks ?? [],
      ...(message?.threadTs === undefined ? {} : { thread_ts: message.threadTs }),
    },
    state: { values: {} },
    response_url: interaction.responseUrl,
    actions: [action],
  };
}

/** An Events API callback wrapping `event` (which needs at least a `type`). */
export function buildEventCallbackPayload(
  event: Record<string, unknown>,
  workspace: Workspace,
  eventId: string,
  nowMs: number,
): Record<string, unknown> {
  return {
    token: workspace.verificationToken,
    team_id: workspace.teamId,
    api_app_id: workspace.appId,
    event: { event_ts: slackTime(nowMs), ...event },
    type: 'event_callback',
    event_id: eventId,
    event_time: Math.floor(nowMs / 1000),
    authorizations: [
      {
        enterprise_id: null,
        team_id: workspace.teamId,
        user_id: workspace.botUserId,
        is_bot: true,
        is_enterprise_install: false,
      },
    ],
    is_ext_shared_channel: false,
  };
}

/** Slack's "seconds.micros" time format used by action_ts and event_ts. */
export function slackTime(nowMs: number): string {
  return (nowMs / 1000).toFixed(6);
}

function stringField(record: Record<string, unknown> | undefined, key: string): string | undefined {
  const value = record?.[key];
  return typeof value === 'string' ? value : undefined;
}
