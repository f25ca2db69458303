import fc from 'fast-check';
import { RE2JS } from 're2js';
import { describe, expect, it } from 'vitest';
import {
  formatMatcher,
  MatcherError,
  matches,
  matchProcedures,
  parseMatcher,
  procedureMatchers,
} from '../../../src/rules/match.js';
import type { Procedure } from '../../../src/rules/schema.js';

describe('rules/match', () => {
  describe('parseMatcher', () => {
    it.each`
      text                             | name             | op      | value
      ${'alertname="DashboardIPC"'}    | ${'alertname'}   | ${'='}  | ${'DashboardIPC'}
      ${'alertname!="X"'}              | ${'alertname'}   | ${'!='} | ${'X'}
      ${'severity=~"page|critical"'}   | ${'severity'}    | ${'=~'} | ${'page|critical'}
      ${'severity!~"info"'}            | ${'severity'}    | ${'!~'} | ${'info'}
      ${'alertname=Foo'}               | ${'alertname'}   | ${'='}  | ${'Foo'}
      ${'severity=~page|critical'}     | ${'severity'}    | ${'=~'} | ${'page|critical'}
      ${'  job = "supervisor"  '}      | ${'job'}         | ${'='}  | ${'supervisor'}
      ${'a=""'}                        | ${'a'}           | ${'='}  | ${''}
      ${'a='}                          | ${'a'}           | ${'='}  | ${''}
      ${'msg="say \\"hi\\""'}          | ${'msg'}         | ${'='}  | ${'say "hi"'}
      ${'path="C:\\\\tmp"'}            | ${'path'}        | ${'='}  | ${'C:\\tmp'}
      ${'text="a\\nb"'}                | ${'text'}        | ${'='}  | ${'a\nb'}
      ${'v="a,b {c}"'}                 | ${'v'}           | ${'='}  | ${'a,b {c}'}
      ${'"quoted name"="x"'}           | ${'quoted name'} | ${'='}  | ${'x'}
      ${'instance=~"10\\\\.0\\\\..*"'} | ${'instance'}    | ${'=~'} | ${'10\\.0\\..*'}
      ${'name="ünïcødé ☃"'}            | ${'name'}        | ${'='}  | ${'ünïcødé ☃'}
    `('parses $text', ({ text, name, op, value }: { text: string; name: string; op: string; value: string }) => {
      expect(parseMatcher(text)).toMatchObject({ name, op, value });
    });

    it.each`
      text                          | message
      ${''}                         | ${"empty matcher in matcher ''"}
      ${'   '}                      | ${"empty matcher in matcher '   '"}
      ${'=foo'}                     | ${"expected a label name at position 1 in matcher '=foo'"}
      ${'{a="b"}'}                  | ${'one matcher per entry, without braces in matcher \'{a="b"}\''}
      ${'alertname'}                | ${'expected an operator (=, !=, =~, !~) after label name "alertname" at position 10, got the end in matcher \'alertname\''}
      ${'instance~="a"'}            | ${'expected an operator (=, !=, =~, !~) after label name "instance" at position 9, got \'~="a"\' in matcher \'instance~="a"\''}
      ${'a=="b"'}                   | ${'unexpected \'=\' at position 3 in an unquoted value (quote the value: a="…") in matcher \'a=="b"\''}
      ${'severity=~"page|critical'} | ${"unterminated quoted string starting at position 11 in matcher 'severity=~\"page|critical'"}
      ${'a="b" c'}                  | ${"unexpected 'c' after the quoted value at position 7 in matcher 'a=\"b\" c'"}
      ${'a="b",c="d"'}              | ${'unexpected \',c="d"\' after the quoted value at position 6 in matcher \'a="b",c="d"\''}
      ${'a=b c'}                    | ${"unexpected ' ' at position 4 in an unquoted value (quote the value: a=\"…\") in matcher 'a=b c'"}
      ${'a="x\\d"'}                 | ${'unknown escape \\d at position 5 (use \\", \\\\, \\n, \\t or \\r) in matcher \'a="x\\d"\''}
      ${'job=~"(unclosed"'}         | ${'invalid regular expression: missing closing ): `(unclosed` in matcher \'job=~"(unclosed"\''}
      ${'""="x"'}                   | ${'empty label name in matcher \'""="x"\''}
    `('rejects $text', ({ text, message }: { text: string; message: string }) => {
      let error: unknown;
      try {
        parseMatcher(text);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(MatcherError);
      expect((error as MatcherError).message).toBe(message);
      expect((error as MatcherError).text).toBe(text);
    });

    it('formats a matcher back to text that parses to the same matcher', () => {
      for (const text of ['a="x \\"y\\" \\\\ \\n"', 'severity=~"page|critical"', 'b!=plain']) {
        const m = parseMatcher(text);
        expect(parseMatcher(formatMatcher(m))).toMatchObject({ name: m.name, op: m.op, value: m.value });
      }
    });
  });

  // Issue 9: matchers have Alertmanager's RE2 semantics, matched in linear time; what RE2 refuses is refused at load.
  describe('RE2 semantics (Alertmanager regexes)', () => {
    it.each`
      regex        | reason
      ${'a(?=b)'}  | ${'invalid or unsupported Perl syntax: `(?=`'}
      ${'a(?!b)'}  | ${'invalid or unsupported Perl syntax: `(?!`'}
      ${'(?<=a)b'} | ${'invalid named capture'}
      ${'(a)\\1'}  | ${'invalid escape sequence: `\\1`'}
      ${'a++'}     | ${'invalid nested repetition operator: `++`'}
      ${'a{1001}'} | ${'invalid repeat count: `{1001}`'}
      ${'\\Z'}     | ${'invalid escape sequence: `\\Z`'}
    `('refuses $regex as Alertmanager (Go regexp) would', ({ regex, reason }: { regex: string; reason: string }) => {
      expect(() => parseMatcher(formatMatcher({ name: 'x', op: '=~', value: regex }))).toThrow(reason);
    });

    it.each`
      regex             | value     | holds
      ${'(?i)PAGE'}     | ${'page'} | ${true}
      ${'a(?i)b'}       | ${'aB'}   | ${true}
      ${'a(?i)b'}       | ${'AB'}   | ${false}
      ${'[[:alpha:]]+'} | ${'abc'}  | ${true}
      ${'\\pL+'}        | ${'ünï'}  | ${true}
      ${'\\Qa.b\\E'}    | ${'a.b'}  | ${true}
      ${'\\Qa.b\\E'}    | ${'axb'}  | ${false}
      ${'a|b'}          | ${'ab'}   | ${false}
      ${'.*'}           | ${'a\nb'} | ${false}
      ${'(?s).*'}       | ${'a\nb'} | ${true}
    `('$regex against $value: $holds (anchored, Go semantics)', ({ regex, value, holds }) => {
      expect(matches([parseMatcher(formatMatcher({ name: 'x', op: '=~', value: regex }))], { x: value })).toBe(holds);
    });

    // Before: V8's backtracking took 2^n steps here (seconds at 28 characters, hours at 40). The test finishing is the
    // proof; how long it takes is measured by `npm run bench` (bench/regex.ts), not asserted.
    it('a label crafted against a backtracking engine is matched at once', () => {
      for (const regex of ['(a+)+b', '(a|aa)+b', '(a|a?)+b', '(.*a){12}', '(\\w+\\s?)+$x']) {
        const m = parseMatcher(formatMatcher({ name: 'x', op: '=~', value: regex }));
        for (const n of [40, 1000, 16 * 1024]) expect(matches([m], { x: `${'a'.repeat(n)}!` })).toBe(false);
      }
    });

    it('a regex-quoted value matches exactly itself (property)', () => {
      fc.assert(
        fc.property(fc.string(), fc.string(), (value, other) => {
          const m = parseMatcher(formatMatcher({ name: 'x', op: '=~', value: RE2JS.quote(value) }));
          expect(matches([m], { x: value })).toBe(true);
          if (other !== value) expect(matches([m], { x: other })).toBe(false);
        }),
        { numRuns: 500 },
      );
    });
  });

  describe('matches', () => {
    it.each`
      matcher                        | labels                          | holds
      ${'alertname="X"'}             | ${{ alertname: 'X' }}           | ${true}
      ${'alertname="X"'}             | ${{ alertname: 'XY' }}          | ${false}
      ${'alertname!="X"'}            | ${{ alertname: 'Y' }}           | ${true}
      ${'alertname!="X"'}            | ${{}}                           | ${true}
      ${'severity=~"page"'}          | ${{ severity: 'page' }}         | ${true}
      ${'severity=~"page"'}          | ${{ severity: 'pager' }}        | ${false}
      ${'severity=~"page"'}          | ${{ severity: 'xpage' }}        | ${false}
      ${'severity=~"page|critical"'} | ${{ severity: 'critical' }}     | ${true}
      ${'severity=~"page|critical"'} | ${{ severity: 'critical-ish' }} | ${false}
      ${'severity=~"page|critical"'} | ${{ severity: 'my-page' }}      | ${false}
      ${'severity!~"page|critical"'} | ${{ severity: 'pager' }}        | ${true}
      ${'severity!~"page|critical"'} | ${{ severity: 'page' }}         | ${false}
      ${'severity=~"(?i)PAGE"'}      | ${{ severity: 'page' }}         | ${true}
      ${'instance=~".+"'}            | ${{}}                           | ${false}
      ${'instance=~".*"'}            | ${{}}                           | ${true}
      ${'instance=""'}               | ${{}}                           | ${true}
      ${'instance=""'}               | ${{ instance: 'a' }}            | ${false}
      ${'instance!=""'}              | ${{ instance: 'a' }}            | ${true}
      ${'name=~"."'}                 | ${{ name: '☃' }}                | ${true}
      ${'toString=""'}               | ${{}}                           | ${true}
    `(
      '$matcher on $labels → $holds',
      ({ matcher, labels, holds }: { matcher: string; labels: Record<string, string>; holds: boolean }) => {
        expect(matches([parseMatcher(matcher)], labels)).toBe(holds);
      },
    );

    it('needs every matcher to hold', () => {
      const ms = ['alertname="A"', 'severity=~"page|critical"'].map(parseMatcher);
      expect(matches(ms, { alertname: 'A', severity: 'page' })).toBe(true);
      expect(matches(ms, { alertname: 'A', severity: 'warning' })).toBe(false);
      expect(matches(ms, { severity: 'page' })).toBe(false);
    });
  });

  describe('matchProcedures', () => {
    const procedure = (id: string, match: string[]) => ({ id, match, file: `rules/${id}.yaml` }) as unknown as Procedure;
    const p1 = procedure('P1-001', ['alertname="SupervisorDown"']);
    const p3 = procedure('P1-003', ['alertname="DashboardIPCDisconnected"', 'severity=~"page|critical"']);
    const any = procedure('catch-page', ['severity="page"']);

    it('returns every procedure whose matchers all hold, in order', () => {
      expect(matchProcedures([p1, p3, any], { alertname: 'DashboardIPCDisconnected', severity: 'page' })).toEqual([p3, any]);
      expect(matchProcedures([p1, p3, any], { alertname: 'DashboardIPCDisconnected', severity: 'warning' })).toEqual([]);
    });

    it('lets no label select a procedure by itself, a procedure label included', () => {
      expect(matchProcedures([p1, p3], { procedure: 'P1-003' })).toEqual([]);
      expect(matchProcedures([p1, p3], { procedure: 'P1-003', alertname: 'SupervisorDown' })).toEqual([p1]);
    });

    it('compiles matchers once per procedure', () => {
      expect(procedureMatchers(p3)).toBe(procedureMatchers(p3));
      expect(procedureMatchers(p3).map(formatMatcher)).toEqual([
        'alertname="DashboardIPCDisconnected"',
        'severity=~"page|critical"',
      ]);
    });
  });
});
