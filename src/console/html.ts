/**
 * HTML built with one tagged template that escapes every interpolated value, so a label value from an alert
 * (untrusted: `<script>`, quotes, `javascript:`) can only ever be text. Only `Html` values pass unescaped, and
 * those come from this module.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(value: unknown): string {
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- callers pass text, numbers and booleans
  return String(value ?? '').replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(value);
}

/** `html\`<td>${label}</td>\``: strings escaped, Html kept, arrays joined, undefined/null/false dropped. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}

/** A local path for links built from values (ids are hex, but encode anyway). */
export function path(...segments: string[]): string {
  return '/' + segments.map((s) => encodeURIComponent(s)).join('/');
}
