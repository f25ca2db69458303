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
      ${'job=~"(unclosed"'}         | ${'invalid regular expression: Unterminated group in matcher \'job=~"(unclosed"\''}
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
