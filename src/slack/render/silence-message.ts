import type { KnownBlock } from '@slack/types';
import type { DeadmanNotice } from '../../domain/deadman.js';
import {
  describeMatchers,
  SILENCE_DURATIONS,
  type SilenceDuration,
  silenceActionId,
  silenceDurations,
  unsilenceActionId,
} from '../../domain/silence.js';
import type { SilenceView } from '../../incidents/presenter.js';
import { clip, escapeText, LIMITS } from './mrkdwn.js';
import type { SlackMessage } from './status-message.js';

/** Silences in an alert thread and the dead-man's switch notices. */

const time = (ms: number): string => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
const mention = (u: string): string => (u === 'bot' ? 'the bot' : `<@${u}>`);
const hours = (d: SilenceDuration): string => `${SILENCE_DURATIONS[d] / 3_600_000} h`;
const section = (text: string): KnownBlock => ({
  type: 'section',
  text: { type: 'mrkdwn', text: clip(text, LIMITS.sectionText) },
});

/** The "Silence 1 h / 4 h" buttons under an alert summary. */
export function silenceButtons(incidentId: number): KnownBlock {
  return {
    type: 'actions',
    block_id: `okome-silence-${incidentId}`,
    elements: silenceDurations.map((d) => ({
      type: 'button',
      action_id: silenceActionId(incidentId, d),
      value: String(incidentId),
      text: { type: 'plain_text', text: `Silence ${hours(d)}` },
    })),
  };
}

export function renderSilence(view: SilenceView): SlackMessage {
  const what = view.matcherSets.map((m) => `\`${escapeText(describeMatchers(m))}\``).join('\n');
  const ids = view.silenceIds.map((id) => `\`${escapeText(id)}\``).join(', ');
  const head =
    view.expired === undefined
      ? `:no_bell: Silenced in Alertmanager for ${hours(view.duration)} by ${mention(view.createdBy)}, until ${time(view.endsAt)}`
      : view.expired.replaced
        ? `:bell: ~Silenced for ${hours(view.duration)} by ${mention(view.createdBy)}~ — replaced by a newer silence at ${time(view.expired.at)}`
        : `:bell: ~Silenced for ${hours(view.duration)} by ${mention(view.createdBy)}~ — expired by ${mention(view.expired.by)} at ${time(view.expired.at)}`;
  const text = `${head}\n${what}\nSilence${view.silenceIds.length === 1 ? '' : 's'}: ${ids}`;
  const blocks: KnownBlock[] = [section(text)];
  if (view.expired === undefined) {
    blocks.push({
      type: 'actions',
      block_id: `okome-unsilence-${view.incidentId}`,
      elements: [
        {
          type: 'button',
          action_id: unsilenceActionId(view.incidentId),
          value: String(view.incidentId),
          text: { type: 'plain_text', text: 'Expire silence' },
        },
      ],
    });
  }
  return { text: clip(text, LIMITS.messageText), blocks };
}

export function renderSilenceFailed(what: 'silence' | 'expire', reason: string): SlackMessage {
  const text = `:warning: Could not ${what === 'silence' ? 'silence these alerts' : 'expire the silence'}: ${escapeText(reason)}`;
  return { text: clip(text, LIMITS.messageText), blocks: [section(text)] };
}

export function renderDeadman(notice: DeadmanNotice, alertname: string): SlackMessage {
  const name = `\`${escapeText(alertname)}\``;
  // Under a minute (a lab's timeout) in seconds: "0 min" would say nothing.
  const minutes = (ms: number) =>
    ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
  const text =
    notice.kind === 'lost'
      ? `:rotating_light: *The monitoring path is down*: no ${name} alert from Alertmanager for ${minutes(notice.timeoutMs)} (${notice.lastSeen === undefined ? 'none since the bot started' : `last at ${time(notice.lastSeen)}`}). Alerts may not reach this channel: check Prometheus, Alertmanager and the route to the bot.`
      : `:white_check_mark: *The monitoring path is back*: ${name} arrived at ${time(notice.at)} (missing since ${time(notice.downSince)}).`;
  return { text: clip(text, LIMITS.messageText), blocks: [section(text)] };
}
