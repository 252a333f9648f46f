import { describe, expect, it } from 'vitest';
import { fillPermalinks, permalinkTo } from '../../src/outbox/payload.js';

describe('permalinks filled in at delivery', () => {
  const link = permalinkTo('m1', { label: 'thread', fallback: 'the incident channel' });
  const payload = {
    text: `Thread: ${link.placeholder}`,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `Thread: ${link.placeholder}` } }],
    links: [link],
  };

  it('writes a well-formed https permalink as a link, escaped', () => {
    const filled = fillPermalinks(payload, new Map([['m1', 'https://t.slack.com/archives/C1/p1?a=1&b=2']]));
    expect(filled.text).toBe('Thread: <https://t.slack.com/archives/C1/p1?a=1&amp;b=2|thread>');
    expect(JSON.stringify(filled.blocks)).toContain(
      '<https://t.slack.com/archives/C1/p1?a=1&amp;b=2|thread>',
    );
  });

  it('never builds a link from a URL that is not https or carries link syntax: the fallback is shown', () => {
    for (const url of [
      'http://t.slack.com/x',
      'javascript:alert(1)',
      'https://x|Approve here',
      'https://x> <!channel',
      'https://x y',
    ]) {
      const filled = fillPermalinks(payload, new Map([['m1', url]]));
      expect(filled.text, url).toBe('Thread: the incident channel');
    }
  });
});
