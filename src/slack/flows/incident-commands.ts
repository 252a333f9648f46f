import type { IncidentService } from '../../incidents/incident-service.js';
import type { Outbox } from '../../outbox/outbox.js';
import type { Incident, Store, TimelineEntry } from '../../store/store-port.js';
import type { Handled, Reply } from '../bolt-app.js';
import { chunk, clip, escapeText, LIMITS } from '../render/mrkdwn.js';

/** `/okome resolve [incident]` and `/okome timeline [incident]`: the chat side; the life is the service's. */

export interface IncidentCommandDeps {
  readonly store: Store;
  readonly outbox: Outbox;
  readonly incidents: IncidentService;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

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

  async resolve(ref: string | undefined, user: string): Promise<Handled> {
    const incident = await this.deps.incidents.find(ref, { openOnly: true });
    if (incident === undefined) {
      return {
        reply: {
          text:
            ref === undefined ? 'No incident is open.' : `No open incident matches \`${escapeText(ref)}\`.`,
        },
        later: undefined,
      };
    }
    // The resolve closes the incident's approvals first (a run in progress is waited for), so it
    // happens after the ack; the thread says when it is done.
    return {
      reply: { text: `Resolving incident ${incident.number} (\`${escapeText(incident.key)}\`)…` },
      later: async () => {
        await this.deps.incidents.resolve(incident.id, 'by-hand', user);
      },
    };
  }

  async timeline(ref: string | undefined, channel: string): Promise<Reply> {
    const { store, outbox } = this.deps;
    const incident = await this.deps.incidents.find(ref, { openOnly: false });
    if (incident === undefined)
      return {
        text: ref === undefined ? 'No incident is open.' : `No incident matches \`${escapeText(ref)}\`.`,
      };
    const markdown = timelineMarkdown(incident, await store.timeline(incident.id));
    const parts = chunk(markdown, LIMITS.sectionText - 10);
    const blocks = parts.slice(0, LIMITS.blocks).map((p) => ({
      type: 'section' as const,
      text: { type: 'mrkdwn' as const, text: `\`\`\`${p.replaceAll('```', "'''")}\`\`\`` },
    }));
    await outbox.enqueuePost({ channel, payload: { text: clip(markdown, LIMITS.messageText), blocks } });
    return { text: `Timeline of incident ${incident.number} (\`${escapeText(incident.key)}\`) posted.` };
  }
}
