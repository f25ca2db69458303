/**
 * URLs as messages and logs may show them. User info, query strings and, for `origin`, paths may hold
 * credentials (a Slack webhook's token is its path), so they are cut.
 *
 * - `origin`: scheme and host, `/…` when there was more (what thrown errors say);
 * - `path`: scheme, host and path, `?…` when there was a query (what `plan` and records say of a rule's own URL).
 */
export function redactUrl(url: string, keep: 'path' | 'origin' = 'path'): string {
  try {
    const u = new URL(url);
    if (keep === 'origin') return `${u.protocol}//${u.host}${u.pathname !== '/' || u.search !== '' ? '/…' : ''}`;
    return `${u.protocol}//${u.host}${u.pathname}${u.search !== '' ? '?…' : ''}`;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * An answer's text with the request URL's likely secrets cut out (user, password, query values, and path
 * segments long enough to be tokens, as in a Slack webhook URL): a server or proxy that echoes the request
 * must not carry a credential into an error message.
 */
export function scrubUrlSecrets(text: string, url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return text;
  }
  const secrets = [
    u.username,
    u.password,
    ...[...u.searchParams.values()],
    ...u.pathname.split('/').filter((s) => s.length >= 16),
  ]
    .flatMap((s) => [s, safeDecode(s)])
    .filter((s) => s.length >= 4);
  let out = text;
  for (const s of new Set(secrets)) out = out.split(s).join('…');
  return out;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
