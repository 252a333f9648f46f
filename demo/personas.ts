import type { SlackEmulator } from '../test/support/slack-emulator/index.js';
import type { Persona, PersonaId } from './web/api-types.js';

export interface Approvers {
  readonly users: readonly string[];
  readonly groups: readonly string[];
}

/** Members of the approver group whom the config does not list by name: approval through the group. */
const GROUP_MEMBER = 'U0OPSGROUP';
const REQUESTER = 'U0REQUEST';
const STRANGER = 'U0STRANGER';

/**
 * The four people of the page, from the bot's own approver list: approver 1 is named in the
 * config, approver 2 may approve only as a member of the config's user group (so the page also
 * shows approval through a group), the requester and the stranger are in neither.
 */
export function demoPersonas(approvers: Approvers): Persona[] {
  const approver1 = approvers.users[0];
  const group = approvers.groups[0];
  if (approver1 === undefined) throw new Error('the bot config names no approver (slack.approvers.users)');
  const approver2: Persona =
    group !== undefined
      ? {
          id: 'approver2',
          userId: GROUP_MEMBER,
          name: 'Blake',
          role: `approver, through user group ${group}`,
        }
      : {
          id: 'approver2',
          userId: approvers.users[1] ?? GROUP_MEMBER,
          name: 'Blake',
          role: 'approver, named in the config',
        };
  const outsiders = new Set([...approvers.users, approver2.userId]);
  for (const id of [REQUESTER, STRANGER])
    if (outsiders.has(id)) throw new Error(`${id} is an approver in this config`);
  return [
    { id: 'requester', userId: REQUESTER, name: 'Riley', role: 'on call: asks the bot, may not approve' },
    { id: 'approver1', userId: approver1, name: 'Avery', role: 'approver, named in the config' },
    approver2,
    { id: 'stranger', userId: STRANGER, name: 'Sam', role: 'no rights: not an approver' },
  ];
}

/** Names the personas in the emulator's directory and puts approver 2 in the approver group. */
export function seatPersonas(emu: SlackEmulator, personas: readonly Persona[], approvers: Approvers): void {
  for (const p of personas) emu.setUser(p.userId, { name: p.name.toLowerCase(), realName: p.name });
  const group = approvers.groups[0];
  const viaGroup = personas.find((p) => p.id === 'approver2');
  if (group !== undefined && viaGroup !== undefined) emu.setUsergroup(group, [viaGroup.userId]);
}

export function personaOf(personas: readonly Persona[], id: PersonaId): Persona {
  const found = personas.find((p) => p.id === id);
  if (found === undefined) throw new Error(`no persona ${id}`);
  return found;
}
