import { parser } from '@prometheus-io/lezer-promql';
import fc from 'fast-check';
import { RE2JS } from 're2js';
import { describe, expect, it } from 'vitest';
import {
  escapePromqlString,
  renderTemplate,
  TemplateError,
  templateProblems,
  templateReferences,
  type Sink,
  type TemplateScope,
} from '../../src/template.js';

const scope = (x: string): TemplateScope => ({ labels: { x }, annotations: {}, vars: { x }, env: {} });
/** Where a lone hole sits in each sink's template: promql inside a matcher's string, url in a path segment. */
const AROUND: Partial<Record<Sink, [string, string]>> = { promql: ['up{a="', '"}'], url: ['http://h/', ''] };
const render = (value: string, sink: Sink, namespace: 'labels' | 'vars' = 'labels') => {
  const [before, after] = AROUND[sink] ?? ['', ''];
  const out = renderTemplate(`${before}{{ ${namespace}.x }}${after}`, scope(value), sink);
  return out.slice(before.length, out.length - after.length);
};

/** What renderTemplate gives, or the TemplateError it throws, so one table covers both. */
function outcome(value: string, sink: Sink): string | { error: string } {
  try {
    return render(value, sink);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    return { error: err.message };
  }
}

const REJECTED = { error: expect.stringContaining('labels.x') as unknown as string };

// Hostile alert label values, each against every sink: the value lands where it is written, escaped, or is refused.
const HOSTILE: [string, Partial<Record<Sink, string | { error: string }>>][] = [
  [
    '; rm -rf /',
    {
      text: '; rm -rf /',
      argv: '; rm -rf /',
      url: '%3B%20rm%20-rf%20%2F',
      promql: '; rm -rf /',
      path: REJECTED,
      header: '; rm -rf /',
      'k8s-name': REJECTED,
    },
  ],
  [
    '$(id)',
    { text: '$(id)', argv: '$(id)', url: '%24(id)', promql: '$(id)', path: '$(id)', header: '$(id)', 'k8s-name': REJECTED },
  ],
  ['`id`', { text: '`id`', argv: '`id`', url: '%60id%60', promql: '`id`', path: '`id`', header: '`id`', 'k8s-name': REJECTED }],
  [
    'a\nb',
    { text: 'a\nb', argv: REJECTED, url: 'a%0Ab', promql: 'a\\nb', path: REJECTED, header: REJECTED, 'k8s-name': REJECTED },
  ],
  [
    'a\r\nX-Injected: 1',
    {
      text: 'a\r\nX-Injected: 1',
      argv: REJECTED,
      url: 'a%0D%0AX-Injected%3A%201',
      promql: 'a\\r\\nX-Injected: 1',
      path: REJECTED,
      header: REJECTED,
      'k8s-name': REJECTED,
    },
  ],
  [
    '"} or vector(1) or {"',
    {
      text: '"} or vector(1) or {"',
      argv: '"} or vector(1) or {"',
      url: '%22%7D%20or%20vector(1)%20or%20%7B%22',
      promql: '\\"} or vector(1) or {\\"',
      path: '"} or vector(1) or {"',
      header: '"} or vector(1) or {"',
      'k8s-name': REJECTED,
    },
  ],
  ['\\', { text: '\\', argv: '\\', url: '%5C', promql: '\\\\', path: REJECTED, header: '\\', 'k8s-name': REJECTED }],
  [
    '../../etc/passwd',
    {
      text: '../../etc/passwd',
      argv: REJECTED, // a ".." segment would leave the directory the command works in
      url: '..%2F..%2Fetc%2Fpasswd',
      promql: '../../etc/passwd',
      path: REJECTED,
      header: '../../etc/passwd',
      'k8s-name': REJECTED,
    },
  ],
  ['..', { text: '..', argv: REJECTED, url: REJECTED, promql: '..', path: REJECTED, header: '..', 'k8s-name': REJECTED }],
  ['-rf', { text: '-rf', argv: REJECTED, url: '-rf', promql: '-rf', path: '-rf', header: '-rf', 'k8s-name': REJECTED }],
  [
    '--help',
    { text: '--help', argv: REJECTED, url: '--help', promql: '--help', path: '--help', header: '--help', 'k8s-name': REJECTED },
  ],
  [
    'a?b#c&d=e',
    {
      text: 'a?b#c&d=e',
      argv: 'a?b#c&d=e',
      url: 'a%3Fb%23c%26d%3De',
      promql: 'a?b#c&d=e',
      path: 'a?b#c&d=e',
      header: 'a?b#c&d=e',
      'k8s-name': REJECTED,
    },
  ],
  [
    'ünïcødé ☃ \u202e',
    {
      text: 'ünïcødé ☃ \u202e',
      argv: 'ünïcødé ☃ \u202e',
      url: '%C3%BCn%C3%AFc%C3%B8d%C3%A9%20%E2%98%83%20%E2%80%AE',
      promql: 'ünïcødé ☃ \u202e',
      path: 'ünïcødé ☃ \u202e',
      header: REJECTED, // an HTTP client would send it altered
      'k8s-name': REJECTED,
    },
  ],
  [
    '\ud800',
    { text: '\ud800', argv: '\ud800', url: REJECTED, promql: REJECTED, path: '\ud800', header: REJECTED, 'k8s-name': REJECTED },
  ],
  [
    'relay-7f9c',
    {
      text: 'relay-7f9c',
      argv: 'relay-7f9c',
      url: 'relay-7f9c',
      promql: 'relay-7f9c',
      path: 'relay-7f9c',
      header: 'relay-7f9c',
      'k8s-name': 'relay-7f9c',
    },
  ],
];

const SINKS: Sink[] = ['text', 'data', 'target', 'env', 'argv', 'url', 'promql', 'path', 'header', 'k8s-name'];

/** Go's strconv.Unquote for a double-quoted literal, as Prometheus reads one. */
function goUnquote(literal: string): string {
  expect(literal.startsWith('"') && literal.endsWith('"') && literal.length >= 2).toBe(true);
  const body = literal.slice(1, -1);
  const simple: Record<string, string> = {
    a: '\x07',
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
    '\\': '\\',
    '"': '"',
  };
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '"' || c === '\n') throw new Error(`unescaped ${JSON.stringify(c)} inside a literal at ${i}`);
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[++i];
    if (e !== undefined && e in simple) out += simple[e];
    else if (e === 'x' || e === 'u' || e === 'U') {
      const digits = { x: 2, u: 4, U: 8 }[e];
      out += String.fromCodePoint(parseInt(body.slice(i + 1, i + 1 + digits), 16));
      i += digits;
    } else throw new Error(`invalid escape \\${e ?? ''}`);
  }
  return out;
}

/** Every node of a parsed query, as [name, text]. */
function nodes(query: string): [string, string][] {
  const out: [string, string][] = [];
  parser.parse(query).iterate({ enter: (n) => void out.push([n.type.isError ? '⚠' : n.name, query.slice(n.from, n.to)]) });
  return out;
}

const hostileBits = fc.constantFrom(
  '"',
  '\\',
  '\\"',
  '"}',
  '\n',
  '\r',
  '`',
  "'",
  '-',
  '..',
  '/',
  '{{ labels.x }}',
  '\u2028',
  '\0',
);

/** Any well-formed string (every code point, control characters included). */
const wellFormed = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.array(fc.oneof(fc.string({ unit: 'binary' }), hostileBits)).map((parts) => parts.join('')),
);

/** Any JavaScript string, lone surrogates included (alert JSON can carry "\ud800"). */
const anyString = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.array(fc.integer({ min: 0, max: 0xffff })).map((codes) => String.fromCharCode(...codes)),
  hostileBits,
  wellFormed,
);

/** data and target take what text takes (none of these is empty); env refuses control characters. */
for (const [value, expected] of HOSTILE) {
  expected.data ??= expected.text;
  expected.target ??= expected.text;
  // eslint-disable-next-line no-control-regex -- control characters are what env refuses
  expected.env ??= /[\u0000-\u001f\u007f]/.test(value) ? REJECTED : value;
}

describe('template', () => {
  describe.each(HOSTILE)('untrusted value %j', (value, expected) => {
    it.each(SINKS)('in the %s sink', (sink) => {
      expect(outcome(value, sink)).toEqual(expected[sink]);
    });
  });

  it('trusts vars where alert values are refused, but still keeps them inside a PromQL string', () => {
    expect(render('-v', 'argv', 'vars')).toBe('-v');
    expect(render('a/b?c', 'url', 'vars')).toBe('a/b?c');
    expect(render('/run/supervisor.pid', 'path', 'vars')).toBe('/run/supervisor.pid');
    expect(render('"} or vector(1) or {"', 'promql', 'vars')).toBe('\\"} or vector(1) or {\\"');
  });

  it('puts a hostile label value into a query as one label matcher value', () => {
    const query = renderTemplate('up{instance="{{ labels.x }}"} == 1', scope('"} or vector(1) or {"'), 'promql');
    expect(query).toBe('up{instance="\\"} or vector(1) or {\\""} == 1');
    expect(nodes(query).filter(([n]) => n === 'StringLiteral' || n === '⚠' || n === 'Or')).toEqual([
      ['StringLiteral', '"\\"} or vector(1) or {\\""'],
    ]);
  });

  it('refuses a missing value rather than rendering an empty string', () => {
    expect(() => renderTemplate('{{ labels.missing }}', scope('x'), 'argv')).toThrow(TemplateError);
    expect(() => renderTemplate('{{ labels.missing }}', scope('x'), 'argv')).toThrow('{{ labels.missing }} has no value');
  });

  it('does not render a value that itself looks like a template', () => {
    expect(renderTemplate('{{ labels.x }}', scope('{{ env.SECRET }}'), 'text')).toBe('{{ env.SECRET }}');
  });

  it.each`
    template                    | problems
    ${'{{ labels.instance }}'}  | ${[]}
    ${'{{labels.instance}}'}    | ${[]}
    ${'{{ labels.instance }'}   | ${['malformed template: "{{" or "}}" outside a {{ namespace.name }} hole']}
    ${'{{ secrets.token }}'}    | ${['unknown template namespace "secrets" (use labels, annotations, vars or env)']}
    ${'{{ labels.a.b }}'}       | ${['malformed template: "{{" or "}}" outside a {{ namespace.name }} hole']}
    ${'{{ labels.x | upper }}'} | ${['malformed template: "{{" or "}}" outside a {{ namespace.name }} hole']}
  `('templateProblems($template)', ({ template, problems }: { template: string; problems: string[] }) => {
    expect(templateProblems(template)).toEqual(problems);
  });

  it('lists the references of a template', () => {
    expect(templateReferences('{{ labels.instance }}:{{ vars.port }}')).toEqual([
      { namespace: 'labels', name: 'instance' },
      { namespace: 'vars', name: 'port' },
    ]);
  });

  describe('properties', () => {
    it('a PromQL-escaped value parses as one string literal whose value is the value', () => {
      fc.assert(
        fc.property(wellFormed, (v) => {
          const literal = `"${escapePromqlString(v)}"`;
          const found = nodes(literal);
          expect(found).toEqual([
            ['PromQL', literal],
            ['StringLiteral', literal],
          ]);
          expect(goUnquote(literal)).toBe(v);
          // and inside a label matcher, it stays the matcher's value (an empty one is refused: issue 9)
          if (v === '') return;
          const query = renderTemplate('up{instance="{{ labels.x }}"}', scope(v), 'promql');
          expect(nodes(query).filter(([n]) => n === 'StringLiteral' || n === '⚠')).toEqual([['StringLiteral', literal]]);
        }),
        { numRuns: 500 },
      );
    });

    // Issue 9: untrusted values never widen an action.
    it('an empty alert value is refused in every sink but free text, whatever surrounds it', () => {
      for (const sink of SINKS.filter((x) => x !== 'text')) {
        for (const t of ['{{ labels.x }}', 'pre{{ labels.x }}', 'http://h/p/{{ labels.x }}', 'up{i="{{ labels.x }}"}'])
          expect(() => renderTemplate(t, scope(''), sink), `${sink} ${t}`).toThrow(/labels\.x is empty/);
      }
      expect(renderTemplate('a{{ labels.x }}b', scope(''), 'text')).toBe('ab');
      // vars are the operator's: an empty var is the operator's choice
      expect(renderTemplate('{{ vars.x }}', scope(''), 'argv')).toBe('');
    });

    it('a label in a URL only ever fills its path or query (property)', () => {
      const templates = [
        'http://{{ labels.x }}/restart',
        'http://{{ labels.x }}:8080/restart',
        'https://user:{{ labels.x }}@h/p',
        '{{ labels.x }}://h/p',
        'http://h/p#{{ labels.x }}',
        '//{{ labels.x }}/p',
      ];
      for (const t of templates) expect(() => renderTemplate(t, scope('evil.example'), 'url'), t).toThrow(/URL's/);
      fc.assert(
        fc.property(
          anyString,
          fc.constantFrom('http://h:8080/a/{{ labels.x }}/b?q={{ labels.x }}', 'http://h/{{ labels.x }}'),
          (v, t) => {
            let out: string;
            try {
              out = renderTemplate(t, scope(v), 'url');
            } catch (err) {
              if (err instanceof TemplateError) return;
              throw err;
            }
            const u = new URL(out);
            expect(u.host).toBe(t.includes(':8080') ? 'h:8080' : 'h');
            expect(u.username + u.password + u.hash).toBe('');
            expect(u.pathname.split('/').length).toBe(t.includes('/b?') ? 4 : 2);
            expect([...u.searchParams.keys()]).toEqual(t.includes('?q=') ? ['q'] : []);
          },
        ),
        { numRuns: 500 },
      );
    });

    it('in a regex matcher an alert value is regex-quoted: the matcher matches exactly that value (property)', () => {
      expect(renderTemplate('up{i=~"{{ labels.x }}"}', scope('.*'), 'promql')).toBe('up{i=~"\\\\.\\\\*"}');
      expect(renderTemplate('up{i!~"{{ labels.x }}|b"}', scope('a+'), 'promql')).toBe('up{i!~"a\\\\+|b"}');
      // vars are the operator's regex
      expect(renderTemplate('up{i=~"{{ vars.x }}"}', scope('a.*'), 'promql')).toBe('up{i=~"a.*"}');
      // and a plain string matcher is not regex-quoted
      expect(renderTemplate('up{i="{{ labels.x }}"}', scope('a.*'), 'promql')).toBe('up{i="a.*"}');
      fc.assert(
        fc.property(
          wellFormed.filter((v) => v !== ''),
          fc.string(),
          (v, other) => {
            const query = renderTemplate('up{i=~"{{ labels.x }}"}', scope(v), 'promql');
            const literal = nodes(query).find(([n]) => n === 'StringLiteral')![1];
            const regex = RE2JS.compile(`^(?:${goUnquote(literal)})$`);
            expect(regex.matches(v)).toBe(true);
            if (other !== v) expect(regex.matches(other)).toBe(false);
          },
        ),
        { numRuns: 500 },
      );
    });

    it('a label outside a double-quoted PromQL string is refused at render too', () => {
      for (const t of ["up{i='{{ labels.x }}'}", 'up{i=`{{ labels.x }}`}', 'up > {{ labels.x }}', 'up # {{ labels.x }}'])
        expect(() => renderTemplate(t, scope('1'), 'promql'), t).toThrow(/outside a double-quoted string/);
    });

    it('argv: a ".." segment is refused anywhere; in a path-like element a label is one path component (property)', () => {
      expect(renderTemplate('/var/log/{{ labels.x }}.log', scope('app'), 'argv')).toBe('/var/log/app.log');
      for (const v of ['../etc/passwd', 'a/../../b', '..', 'a/b', 'a\\b'])
        expect(() => renderTemplate('/var/log/{{ labels.x }}', scope(v), 'argv'), v).toThrow(TemplateError);
      expect(() => renderTemplate('{{ labels.x }}', scope('x/../../etc'), 'argv')).toThrow(/"\.\." path segment/);
      expect(renderTemplate('{{ labels.x }}', scope('a/b'), 'argv')).toBe('a/b'); // a whole argument: the author's choice
      fc.assert(
        fc.property(anyString, (v) => {
          let out: string;
          try {
            out = renderTemplate('/srv/data/{{ labels.x }}/current', scope(v), 'argv');
          } catch (err) {
            if (err instanceof TemplateError) return;
            throw err;
          }
          const parts = out.split('/');
          expect(parts.slice(0, 3)).toEqual(['', 'srv', 'data']);
          expect(parts.length).toBe(5);
          expect(['', '.', '..']).not.toContain(parts[3]);
        }),
        { numRuns: 500 },
      );
    });

    it('the url sink never yields /, ?, # or & from an alert value', () => {
      fc.assert(
        fc.property(anyString, (v) => {
          const out = outcome(v, 'url');
          if (typeof out === 'string') expect(out).not.toMatch(/[/?#&]/);
        }),
        { numRuns: 500 },
      );
    });

    it('the argv sink never yields an argument starting with "-" from an alert value', () => {
      fc.assert(
        fc.property(anyString, anyString, (a, b) => {
          for (const template of ['{{ labels.x }}', '{{ labels.x }}{{ labels.y }}']) {
            try {
              const out = renderTemplate(template, { labels: { x: a, y: b }, annotations: {}, vars: {}, env: {} }, 'argv');
              if (out !== '') expect(out.startsWith('-')).toBe(false);
            } catch (err) {
              expect(err).toBeInstanceOf(TemplateError);
            }
          }
        }),
        { numRuns: 500 },
      );
    });
  });
});
