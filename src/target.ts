const VISIBLE_ASCII = /^[\x21-\x7e]*$/;

/**
 * One spelling per target, so that variants of the same target share one lease, one budget and one storm-breaker
 * entry instead of multiplying them: `Host-1`, ` host-1 `, `host\u200b-1`, `ｈｏｓｔ-1` and `host-1:9100` are all
 * `host-1`. Unicode compatibility forms are folded (NFKC), controls, invisible format characters (zero-width,
 * bidi) and white space are dropped, case is folded, and a port (`host:9100`, `[::1]:9100`) or a host name's final
 * dot is cut. Coarser is the safe direction: two targets wrongly merged wait for each other; two spellings wrongly
 * kept apart would each get the budget.
 */
export function canonicalTarget(target: string): string {
  // Visible ASCII only (the usual `host:port`): NFKC changes nothing and there is nothing to drop, so only the case
  // folds; the same result as the full path below, without its Unicode work (it ran for every alert of a webhook).
  const folded = VISIBLE_ASCII.test(target)
    ? target.toLowerCase()
    : target
        .normalize('NFKC')
        .replace(/[\p{Cc}\p{Cf}\p{Z}\s]/gu, '')
        .toLowerCase();
  return folded.replace(/^(\[[^\]]*\]|[^:/[\]]+):\d+$/, '$1').replace(/^([^/]+)\.$/, '$1');
}
