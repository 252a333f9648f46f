/**
 * The action ids of the bot's buttons: the verb and the object's opaque id. Rendered by the
 * chat adapter, parsed back by the use case that owns the object; never carry free text.
 */
export const APPROVE_PREFIX = 'okome:approve:';
export const REJECT_PREFIX = 'okome:reject:';
export const ACK_PREFIX = 'okome:ack:';
/** `okome:silence:<1h|4h>:<incident id>`: silence an alert-opened incident's alerts. */
export const SILENCE_PREFIX = 'okome:silence:';
/** `okome:unsilence:<incident id>`: expire the incident's active silences. */
export const UNSILENCE_PREFIX = 'okome:unsilence:';
