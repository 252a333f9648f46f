import type { Authorization } from '../../domain/approval.js';
import type { IncidentService } from '../../incidents/incident-service.js';
import { findReportedIncident, type IncidentReports } from '../../incidents/report-use-case.js';
import type { Outbox } from '../../outbox/outbox.js';
import type { Incident, Store, TimelineEntry } from '../../store/store-port.js';
import type { Handled, Reply } from '../bolt-app.js';
import { renderReportMessage } from '../render/incident-report-message.js';
import { chunk, codeBlock, escapeClipped, escapeText, LIMITS } from '../render/mrkdwn.js';

/**
 * `/okome resolve [incident]`, `/okome timeline [incident]` and `/okome report [incident]`: the
 * chat side; the life is the service's.
 */

export interface IncidentCommandDeps {
  readonly store: Store;
  readonly outbox: Outbox;
  readonly incidents: IncidentService;
  readonly reports: IncidentReports;
  /** Who may resolve: responders and approvers (user groups looked up). */
  readonly mayResolve: (user: string) => Promise<Authorization>;
  readonly now: () => number;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The timeline as markdown, raw: the caller escapes it for where it goes. */
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

  /**
   * Only responders and approvers may resolve. Deciding may ask Slack for a user group's
   * members, so it happens after the ack; the answer is ephemeral, the resolve said in the thread.
   */
  async resolve(ref: string | undefined, user: string, channel: string): Promise<Handled> {
    const { store, outbox, now } = this.deps;
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
    const tell = (text: string) => outbox.enqueueEphemeral({ channel, user, payload: { text } });
    return {
      reply: undefined,
      later: async () => {
        const who = await this.deps.mayResolve(user);
        if (!who.allowed) {
          await store.appendAudit({
            at: now(),
            approvalId: null,
            incidentId: incident.id,
            actionId: null,
            actor: user,
            event: 'resolve-by-hand',
            verdict: 'refused',
            code: 'not-a-responder',
            reason: who.reason,
            stateBefore: incident.status,
            stateAfter: incident.status,
            targets: [],
            commands: [],
          });
          await tell(`Only responders and approvers may resolve an incident: ${escapeText(who.reason)}`);
          return;
        }
        // The resolve closes the incident's approvals first (a run in progress is waited for);
        // the thread says when it is done.
        await tell(
          `Resolving incident ${escapeText(incident.number)} (\`${escapeClipped(incident.key, 200)}\`)…`,
        );
        await this.deps.incidents.resolve(incident.id, 'by-hand', user);
      },
    };
  }

  /**
   * The timeline goes to the incident's thread, never to the channel the command came from;
   * an incident with no thread yet gets it as an ephemeral answer.
   */
  async timeline(ref: string | undefined): Promise<Reply> {
    const { store, outbox } = this.deps;
    const incident = await this.deps.incidents.find(ref, { openOnly: false });
    if (incident === undefined)
      return {
        text: ref === undefined ? 'No incident is open.' : `No incident matches \`${escapeText(ref)}\`.`,
      };
    const markdown = timelineMarkdown(incident, await store.timeline(incident.id));
    const parts = chunk(markdown, LIMITS.sectionText - 100);
    const blocks = parts.slice(0, LIMITS.blocks).map((p) => ({
      type: 'section' as const,
      text: { type: 'mrkdwn' as const, text: codeBlock(p) },
    }));
    const payload = { text: escapeClipped(markdown, LIMITS.messageText), blocks };
    const name = `incident ${escapeText(incident.number)} (\`${escapeClipped(incident.key, 200)}\`)`;
    if (incident.rootRef === null) return payload;
    await outbox.enqueuePost({ channel: incident.channel, threadRef: incident.rootRef, payload });
    return { text: `Timeline of ${name} posted in its thread.` };
  }

  /**
   * The report goes to the incident's thread as a file, like the one posted on resolve: it is the
   * team's record for the postmortem, found where the incident was worked, and Slack cannot show
   * a file ephemerally. The asker gets an ephemeral pointer; an incident with no thread yet gets
   * the report itself as an ephemeral answer. A number names the newest incident with it, open
   * or resolved.
   */
  async report(ref: string | undefined): Promise<Handled> {
    const incident =
      ref === undefined
        ? await this.deps.incidents.find(undefined, { openOnly: true })
        : await findReportedIncident(this.deps.store, ref);
    if (incident === undefined)
      return {
        reply: {
          text: ref === undefined ? 'No incident is open.' : `No incident matches \`${escapeText(ref)}\`.`,
        },
        later: undefined,
      };
    if (incident.rootRef === null)
      return { reply: renderReportMessage(await this.deps.reports.build(incident)), later: undefined };
    const name = `incident ${escapeText(incident.number)} (\`${escapeClipped(incident.key, 200)}\`)`;
    // Ack first: drawing the charts and queueing the files happen after the answer.
    return {
      reply: { text: `Post-incident report of ${name}: posted in its thread.` },
      later: async () => {
        await this.deps.reports.publish(incident);
      },
    };
  }
}
