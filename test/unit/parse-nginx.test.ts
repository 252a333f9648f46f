import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  globMatch,
  parseNginxDump,
  parseNginxDurationMs,
  parseStreamingDirectives,
  type StreamingCheck,
  tokenizeNginx,
} from '../../src/domain/parse/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/parse', name), 'utf8');

function streaming(text: string): StreamingCheck {
  const r = parseStreamingDirectives(text);
  if (r.kind !== 'streaming') throw new Error(`expected a streaming check, got: ${r.reason}`);
  return r;
}

const FOUR =
  'proxy_buffering off; proxy_request_buffering off; proxy_read_timeout 600s; proxy_send_timeout 600s;';

describe('tokenizeNginx', () => {
  it('words, quotes, escapes, comments, variables in braces, and braces inside words', () => {
    const r = tokenizeNginx(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's own ${var} syntax, not a JS template
      "add_header X \"a;b # not a comment\" always; # comment\nset $x ${host}x;\nreturn 200 'it\\'s';\nlocation ~ a#b {}",
    );
    if (!r.ok) throw new Error(r.error);
    const words = r.tokens.map((t) => (t.type === 'word' ? t.text : t.type));
    expect(words).toEqual([
      'add_header',
      'X',
      'a;b # not a comment',
      'always',
      ';',
      'set',
      '$x',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's own ${var} syntax, not a JS template
      '${host}x',
      ';',
      'return',
      '200',
      "it's",
      ';',
      'location',
      '~',
      'a#b',
      '{',
      '}',
    ]);
    expect(r.tokens.at(-1)?.line).toBe(4);
  });

  it('an unterminated string is an error with its line', () => {
    expect(tokenizeNginx('a;\nreturn 200 "oops;\n')).toEqual({
      ok: false,
      error: 'unterminated " string',
      line: 2,
    });
  });
});

describe('parseNginxDump', () => {
  it('splits nginx -T into its files and parses each', () => {
    const r = parseNginxDump(fixture('nginx-T-debian.txt'));
    if (r.kind !== 'dump') throw new Error(r.reason);
    expect(r.files.map((f) => f.path)).toEqual([
      '/etc/nginx/nginx.conf',
      '/etc/nginx/mime.types',
      '/etc/nginx/sites-enabled/default',
    ]);
    expect(r.files[0]?.directives.map((d) => d.name)).toEqual([
      'user',
      'worker_processes',
      'pid',
      'error_log',
      'include',
      'events',
      'http',
    ]);
  });

  it('unbalanced braces and cut-short output are unknown, naming file and line', () => {
    expect(parseNginxDump('http {\n  server {\n')).toEqual({
      kind: 'unknown',
      reason: '(configuration text):2: "server" block never closed (output cut short?)',
    });
    expect(parseNginxDump('# configuration file /etc/nginx/nginx.conf:\nevents {}\n}\n')).toEqual({
      kind: 'unknown',
      reason: '/etc/nginx/nginx.conf:2: unexpected "}"',
    });
    expect(parseNginxDump('worker_processes 1')).toMatchObject({
      kind: 'unknown',
      reason: expect.stringMatching(/unexpected end of file/),
    });
    expect(parseNginxDump('a b\n}')).toMatchObject({
      kind: 'unknown',
      reason: expect.stringMatching(/missing its ";"/),
    });
  });

  it('globs as nginx include uses them', () => {
    expect(globMatch('/etc/nginx/conf.d/*.conf', '/etc/nginx/conf.d/okome.conf')).toBe(true);
    expect(globMatch('/etc/nginx/conf.d/*.conf', '/etc/nginx/conf.d/okome.conf.bak')).toBe(false);
    expect(globMatch('/etc/nginx/conf.d/*.conf', '/etc/nginx/conf.d/sub/okome.conf')).toBe(false);
    expect(globMatch('/etc/nginx/sites-enabled/*', '/etc/nginx/sites-enabled/default')).toBe(true);
    expect(globMatch('/etc/nginx/modules-enabled/*.conf', '/etc/nginx/modules-enabled/')).toBe(false);
    expect(globMatch('/x/?.conf', '/x/a.conf')).toBe(true);
    expect(globMatch('/x/[ab].conf', '/x/b.conf')).toBe(true);
    expect(globMatch('/x/[a-c]*.conf', '/x/cat.conf')).toBe(true);
    expect(globMatch('/x/[!ab].conf', '/x/b.conf')).toBe(false);
    expect(globMatch('/x/[ab.conf', '/x/[ab.conf')).toBe(true);
    expect(globMatch('/x/*a*b', '/x/xaxxb')).toBe(true);
  });

  it('a hostile glob does not backtrack exponentially', () => {
    const started = performance.now();
    expect(globMatch(`/x/${'*a'.repeat(200)}!`, `/x/${'a'.repeat(5000)}`)).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe('parseNginxDurationMs', () => {
  it.each([
    ['600s', 600_000],
    ['600', 600_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1h 30m', 5_400_000],
    ['500ms', 500],
    ['1d', 86_400_000],
    ['60s', 60_000],
  ])('%s is %i ms', (text, ms) => {
    expect(parseNginxDurationMs(text)).toBe(ms);
  });

  it.each(['', ' ', '10x', '30m1h', '1.5h', 's', '10M', '-5s', 'off', `${'1'.repeat(40)}x`])(
    '%j is not a valid nginx time',
    (text) => {
      expect(parseNginxDurationMs(text)).toBeNull();
    },
  );
});

describe('parseStreamingDirectives (nginx -T)', () => {
  it('the OKOME hardened config with gaps: per location, through includes and inheritance', () => {
    const r = streaming(fixture('nginx-T-okome-gaps.txt'));
    expect(r.ok).toBe(false);
    expect(r.warnings).toEqual([]);
    expect(r.locations.map((l) => [l.modifier, l.path, l.missing])).toEqual([
      ['^~', '/api/', []],
      ['=', '/api/stream', []],
      ['~', '^/api/v[0-9]+/events$', ['proxy_request_buffering', 'proxy_read_timeout']],
      [null, '/stream', ['proxy_send_timeout']],
      [null, '/stream/legacy', ['proxy_buffering', 'proxy_send_timeout']],
    ]);
    const api = r.locations[0];
    expect(api?.server).toBe('okome-edge');
    expect(api?.file).toBe('/etc/nginx/conf.d/okome.conf');
    // Buffering comes from a snippet included in the location; timeouts from the http block.
    expect(api?.directives.proxy_buffering).toEqual({
      value: 'off',
      from: 'location',
      file: '/etc/nginx/snippets/okome-stream.conf',
      line: 4,
      ok: true,
    });
    expect(api?.directives.proxy_read_timeout).toMatchObject({ value: '10m', from: 'http', ok: true });
    expect(api?.directives.proxy_send_timeout).toMatchObject({ value: '600s', from: 'http', ok: true });
    const events = r.locations[2];
    expect(events?.directives.proxy_request_buffering).toEqual({
      value: null,
      from: 'default',
      file: null,
      line: null,
      ok: false,
    });
    expect(events?.directives.proxy_read_timeout).toMatchObject({
      value: '60s',
      from: 'location',
      ok: false,
    });
    const legacy = r.locations[4];
    expect(legacy?.directives.proxy_request_buffering).toMatchObject({
      value: 'off',
      from: 'enclosing-location',
    });
    expect(legacy?.directives.proxy_buffering).toMatchObject({ value: 'on', from: 'location', ok: false });
  });

  it('the OKOME hardened config with all four everywhere is ok', () => {
    const r = streaming(fixture('nginx-T-okome-ok.txt'));
    expect(r.ok).toBe(true);
    expect(r.locations.map((l) => l.path)).toEqual([
      '/api/',
      '/api/stream',
      '^/api/v[0-9]+/events$',
      '/stream',
    ]);
    expect(r.locations[3]?.directives.proxy_send_timeout).toMatchObject({ value: '1h30m', ok: true });
  });

  it("Debian's default config has no API/stream location: unknown", () => {
    expect(parseStreamingDirectives(fixture('nginx-T-debian.txt'))).toEqual({
      kind: 'unknown',
      reason: 'no API/stream location (a path containing /api or stream) in 1 server block(s)',
    });
  });

  it('comments and strings do not count as directives', () => {
    const r = streaming(`http { server { location /api/ {
      # proxy_buffering off;
      add_header X-Note "proxy_request_buffering off;";
      proxy_read_timeout 600s; proxy_send_timeout 600s;
    } } }`);
    expect(r.locations[0]?.missing).toEqual(['proxy_buffering', 'proxy_request_buffering']);
  });

  it('server-level settings count; a location may override them; if-blocks do not count', () => {
    const r = streaming(`http { server {
      ${FOUR}
      location /api/ { }
      location /api/slow { proxy_read_timeout 30s; }
      location /stream { if ($arg_x) { proxy_buffering on; } }
    } }`);
    expect(r.locations.map((l) => [l.path, l.missing])).toEqual([
      ['/api/', []],
      ['/api/slow', ['proxy_read_timeout']],
      ['/stream', []],
    ]);
  });

  it('modifier glued to the path, and several servers told apart', () => {
    const r = streaming(`http {
      server { server_name a.example; location ~*^/API/ { ${FOUR} } }
      server { listen 8080; location /live-stream { } }
    }`);
    expect(r.locations.map((l) => [l.server, l.modifier, l.path, l.missing.length])).toEqual([
      ['a.example', '~*', '^/API/', 0],
      ['8080', null, '/live-stream', 4],
    ]);
  });

  it('a sites file on its own (no http block) is judged, with a warning', () => {
    const r = streaming(`server { location /api/ { ${FOUR} } }`);
    expect(r.ok).toBe(true);
    expect(r.warnings).toEqual([
      'server blocks in (configuration text) are outside any http block; judged with the http settings found',
    ]);
  });

  it('include loops and missing include targets are warnings, not hangs', () => {
    const text = [
      '# configuration file /etc/nginx/nginx.conf:',
      'http { include /etc/nginx/a.conf; include /etc/nginx/missing.conf; server { location /api/ { include /etc/nginx/a.conf; } } }',
      '# configuration file /etc/nginx/a.conf:',
      `include /etc/nginx/a.conf; ${FOUR}`,
    ].join('\n');
    const r = streaming(text);
    expect(r.ok).toBe(true);
    expect(r.warnings).toContain(
      '/etc/nginx/nginx.conf:1: include /etc/nginx/missing.conf names no file in the dump',
    );
    expect(r.warnings.some((w) => w.includes('include loop through /etc/nginx/a.conf'))).toBe(true);
  });

  it('an exponential include fan-out stops at the budget', () => {
    const files = [
      '# configuration file /etc/nginx/nginx.conf:',
      'http { include f0.conf; server { location /api/ { } } }',
    ];
    for (let i = 0; i < 30; i++) {
      files.push(
        `# configuration file /etc/nginx/f${i}.conf:`,
        `include f${i + 1}.conf; include f${i + 1}.conf;`,
      );
    }
    files.push('# configuration file /etc/nginx/f30.conf:', 'gzip on;');
    expect(parseStreamingDirectives(files.join('\n'))).toMatchObject({
      kind: 'unknown',
      reason: expect.stringMatching(/^nginx configuration too large to judge: includes expand to more than/),
    });
  });

  it('a stream {} block with its own servers is not taken for http', () => {
    const text = [
      '# configuration file /etc/nginx/nginx.conf:',
      `http { server { location /api/ { ${FOUR} } } }`,
      'stream { include /etc/nginx/streams-enabled/*; }',
      '# configuration file /etc/nginx/streams-enabled/redis:',
      'server { listen 6380; proxy_pass 10.86.0.19:6379; }',
    ].join('\n');
    expect(streaming(text)).toMatchObject({ ok: true, warnings: [] });
  });

  it('a file no include names is judged inside http, with a warning', () => {
    const text = [
      '# configuration file /etc/nginx/nginx.conf:',
      `http { ${FOUR} }`,
      '# configuration file /etc/nginx/orphan.conf:',
      'server { location /api/ { } }',
    ].join('\n');
    expect(streaming(text)).toMatchObject({
      ok: true,
      warnings: [
        'server blocks in /etc/nginx/orphan.conf are outside any http block; judged with the http settings found',
      ],
    });
  });

  it('a block with 300k directives does not overflow the stack', () => {
    const text = `http { server { location /api/ { ${FOUR} } ${'gzip on; '.repeat(300_000)} } }`;
    expect(streaming(text).ok).toBe(true);
  });

  it('many hostile include globs against many files stop at the glob budget', () => {
    const parts = [
      `# configuration file /etc/nginx/nginx.conf:\nhttp { server { location /api/ { ${FOUR} } } }\n`,
    ];
    for (let i = 0; i < 2000; i++) parts.push(`include /etc/nginx/${'*a'.repeat(40)}${i}!;\n`);
    for (let i = 0; i < 2000; i++)
      parts.push(`# configuration file /etc/nginx/${'a'.repeat(250)}${i}:\ngzip on;\n`);
    const started = performance.now();
    const r = parseStreamingDirectives(parts.join(''));
    expect(performance.now() - started).toBeLessThan(5000);
    expect(r).toMatchObject({
      kind: 'unknown',
      reason: expect.stringMatching(/include globs cost more than/),
    });
  });

  it('deep nesting is unknown, not a stack overflow', () => {
    const deep = `http { server { ${'location /api/ { '.repeat(5000)}${'} '.repeat(5000)} } }`;
    expect(parseStreamingDirectives(deep)).toMatchObject({
      kind: 'unknown',
      reason: expect.stringMatching(/locations nested deeper than 64/),
    });
  });

  it('no http/server block, empty and cut-short output are unknown', () => {
    expect(parseStreamingDirectives('')).toEqual({
      kind: 'unknown',
      reason: 'nginx -T printed no configuration',
    });
    expect(parseStreamingDirectives('events { worker_connections 64; }')).toEqual({
      kind: 'unknown',
      reason: 'no http or server block in the nginx configuration',
    });
    const text = fixture('nginx-T-okome-gaps.txt');
    expect(parseStreamingDirectives(text.slice(0, text.indexOf('location = /api/stream')))).toMatchObject({
      kind: 'unknown',
      reason: expect.stringMatching(/never closed \(output cut short\?\)$/),
    });
  });

  it('reads a 1 MB nginx -T quickly', () => {
    const server = (i: number) =>
      `server {\n  listen ${8000 + i};\n  server_name s${i}.example; # comment { ; }\n  location / { proxy_pass http://127.0.0.1:9000; add_header X "a { b ; c }"; }\n  location /api/ {\n    ${FOUR}\n  }\n}\n`;
    const parts = [
      '# configuration file /etc/nginx/nginx.conf:\nhttp {\n  include /etc/nginx/conf.d/*.conf;\n}\n',
    ];
    let size = parts[0]?.length ?? 0;
    for (let i = 0; size < 1_048_576; i++) {
      const part = `# configuration file /etc/nginx/conf.d/s${String(i).padStart(5, '0')}.conf:\n${server(i)}`;
      parts.push(part);
      size += part.length;
    }
    const started = performance.now();
    const r = streaming(parts.join(''));
    const elapsed = performance.now() - started;
    expect(r.ok).toBe(true);
    expect(r.locations.length).toBe(parts.length - 1);
    expect(elapsed).toBeLessThan(2000);
  });
});
