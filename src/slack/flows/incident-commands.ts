import type { Logger } from '../../logger.js';
import type { Outbox } from '../../outbox/outbox.js';
import type { Incident, Store, TimelineEntry } from '../../store/store-port.js';
import type { Reply } from '../bolt-app.js';
import { chunk, clip, escapeText, LIMITS } from '../render/mrkdwn.js';

/** `/okome resolve [incident]` and `/okome timeline [incident]`. */

export interface IncidentCommandDeps {
  readonly store: Store;
  readonly outbox: Outbox;
  readonly logger: Logger;
  readonly now: () => number;
  /** Pending approvals of a closed incident lose their buttons (nothing can run any more). */
  readonly cancelApprovals: (incidentId: number, reason: string) => Promise<void>;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** By key, by number (the newest open one with it), or, with no reference, the newest open incident. */
export function findIncident(store: Store, ref: string | undefined, openOnly: boolean): Incident | undefined {
  const open = store.openIncidents().sort((a, b) => b.openedAt - a.openedAt);
  if (ref === undefined) return open[0];
  const byKey = open.find((i) => i.key === ref) ?? (openOnly ? undefined : store.incidentByKey(ref));
  return byKey ?? open.find((i) => i.number === ref);
}

export function timelineMarkdown(incident: Incident, entries: readonly TimelineEntry[]): string {
  const lines = [
    `# Incident ${incident.number} — ${incident.title}`,
    '',
    `- Key: \`${incident.key}\``,
    `- Opened: ${iso(incident.openedAt)} (requested by ${incident.requester})`,
    `- Status: ${incident.status}${incident.resolvedAt === null ? '' : ` at ${iso(incident.resolvedAt)}${incident.resolvedReason === null ? '' : ` — ${incident.resolvedReason}`}`}`,
    '',
    '## Timeline (UTC)',
    '',
    ...entries.map((e) => `- ${iso(e.at)} **${e.kind}** ${e.text.replaceAll('\n', ' ')}`),
  ];
  return lines.join('\n');
}

export class IncidentCommands {
  constructor(private readonly deps: IncidentCommandDeps) {}

  resolve(ref: string | undefined, user: string): { reply: Reply; later: (() => Promise<void>) | undefined } {
    const { store, outbox, now } = this.deps;
    const incident = findIncident(store, ref, true);
    if (incident === undefined) {
      return {
        reply: {
          text:
            ref === undefined ? 'No incident is open.' : `No open incident matches \`${escapeText(ref)}\`.`,
        },
        later: undefined,
      };
    }
    const why = `Resolved by hand by <@${user}>.`;
    if (!store.resolveIncident(incident.id, now(), why))
      return { reply: { text: 'That incident was already resolved.' }, later: undefined };
    store.appendTimeline({
      incidentId: incident.id,
      at: now(),
      kind: 'resolved',
      text: `Resolved by hand by ${user}`,
    });
    if (incident.rootRef !== null) {
      outbox.enqueuePost({
        channel: incident.channel,
        threadRef: incident.rootRef,
        payload: { text: `:large_green_circle: ${why}` },
      });
    }
    return {
      reply: { text: `Resolved incident ${incident.number} (\`${escapeText(incident.key)}\`).` },
      later: () => this.deps.cancelApprovals(incident.id, 'the incident was resolved by hand'),
    };
  }

  timeline(ref: string | undefined, channel: string): Reply {
    const { store, outbox } = this.deps;
    const incident = findIncident(store, ref, false);
    if (incident === undefined)
      return {
        text: ref === undefined ? 'No incident is open.' : `No incident matches \`${escapeText(ref)}\`.`,
      };
    const markdown = timelineMarkdown(incident, store.timeline(incident.id));
    const parts = chunk(markdown, LIMITS.sectionText - 10);
    const blocks = parts.slice(0, LIMITS.blocks).map((p) => ({
      type: 'section' as const,
      text: { type: 'mrkdwn' as const, text: `\`\`\`${p.replaceAll('```', "'''")}\`\`\`` },
    }));
    outbox.enqueuePost({ channel, payload: { text: clip(markdown, LIMITS.messageText), blocks } });
    return { text: `Timeline of incident ${incident.number} (\`${escapeText(incident.key)}\`) posted.` };
  }
}
