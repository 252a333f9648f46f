import { describe, expect, it } from 'vitest';
import { listenHost } from '../../src/app.js';

describe('listenHost', () => {
  it('HTTP mode: every address unless configured (Slack must reach it)', () => {
    expect(listenHost('http', undefined)).toBe('0.0.0.0');
    expect(listenHost('http', '10.0.0.5')).toBe('10.0.0.5');
  });

  it('Socket Mode: loopback unless configured (the hooks need the configured address)', () => {
    expect(listenHost('socket', undefined)).toBe('127.0.0.1');
    expect(listenHost('socket', '0.0.0.0')).toBe('0.0.0.0');
  });
});
