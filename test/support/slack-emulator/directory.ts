// The workspace's people: any plausible user id exists (as in a real workspace the bot has not
// looked at yet); tests override names, bots and deactivated accounts, and define user groups.

export interface UserPatch {
  readonly name?: string;
  readonly realName?: string;
  readonly isBot?: boolean;
  readonly deleted?: boolean;
}

export interface SlackUser {
  readonly id: string;
  readonly team_id: string;
  readonly name: string;
  readonly real_name: string;
  readonly is_bot: boolean;
  readonly deleted: boolean;
  readonly profile: { readonly display_name: string; readonly real_name: string };
}

const USER_ID = /^[UW][A-Z0-9]+$/;

export class Directory {
  readonly #users = new Map<string, UserPatch>();
  readonly #usergroups = new Map<string, readonly string[]>();

  constructor(
    readonly teamId: string,
    readonly botUserId: string,
  ) {
    this.#users.set(botUserId, { name: 'okome', isBot: true });
  }

  setUser(id: string, patch: UserPatch): void {
    if (!USER_ID.test(id))
      throw new RangeError(`not a Slack user id: ${JSON.stringify(id)} (expected U… or W…)`);
    this.#users.set(id, { ...this.#users.get(id), ...patch });
  }

  user(id: string): SlackUser | undefined {
    if (!USER_ID.test(id)) return undefined;
    const patch = this.#users.get(id) ?? {};
    const name = patch.name ?? id.toLowerCase();
    const realName = patch.realName ?? name;
    return {
      id,
      team_id: this.teamId,
      name,
      real_name: realName,
      is_bot: patch.isBot ?? false,
      deleted: patch.deleted ?? false,
      profile: { display_name: name, real_name: realName },
    };
  }

  userName(id: string): string {
    return this.user(id)?.name ?? id.toLowerCase();
  }

  setUsergroup(id: string, members: readonly string[]): void {
    if (!/^S[A-Z0-9]+$/.test(id))
      throw new RangeError(`not a Slack user group id: ${JSON.stringify(id)} (expected S…)`);
    this.#usergroups.set(id, [...members]);
  }

  usergroupMembers(id: string): readonly string[] | undefined {
    return this.#usergroups.get(id);
  }
}
