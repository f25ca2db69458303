/**
 * npm run bench:security (regex part): the worst case of an Alertmanager matcher against a crafted label, before and
 * after issue 9. Before: V8's backtracking RegExp, `^(?:(a+)+b)$` against "aaa…a!" doubles its time per character.
 * After: the matcher as remediator compiles it (re2js, linear time), up to the 16 KiB a label value may hold.
 * Prints numbers; passes or fails nothing.
 */
import { formatMatcher, matches, parseMatcher } from '../src/rules/match.js';

const PATTERN = '(a+)+b';
const label = (n: number) => `${'a'.repeat(n)}!`;
const time = (fn: () => unknown): number => {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
};

export function regexWorstCase(): { before: [number, number][]; after: [number, number][] } {
  const backtracking = new RegExp(`^(?:${PATTERN})$`, 'u');
  const before: [number, number][] = [];
  for (const n of [16, 18, 20, 22, 24, 25, 26]) before.push([n, time(() => backtracking.test(label(n)))]);
  const m = parseMatcher(formatMatcher({ name: 'pool', op: '=~', value: PATTERN }));
  const after: [number, number][] = [];
  for (const n of [26, 40, 1024, 16 * 1024]) after.push([n, time(() => matches([m], { pool: label(n) }))]);
  return { before, after };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { before, after } = regexWorstCase();
  console.log(`matcher pool=~"${PATTERN}" against "a"×n + "!" (no match)`);
  for (const [n, ms] of before)
    console.log(`  before (V8 backtracking)  n=${String(n).padStart(5)}  ${ms.toFixed(1).padStart(9)} ms`);
  for (const [n, ms] of after)
    console.log(`  after  (re2js, linear)    n=${String(n).padStart(5)}  ${ms.toFixed(1).padStart(9)} ms`);
  const [n1, t1] = before.at(-2)!;
  const [n2, t2] = before.at(-1)!;
  console.log(
    `  before doubles per character: ×${(t2 / t1).toFixed(2)} from n=${n1} to n=${n2}; n=40 would take ~${((t2 * 2 ** (40 - n2)) / 3_600_000).toFixed(0)} h`,
  );
}
