import { z } from 'zod';

/**
 * A regular expression from a rule file, compiled once at load. It prints and serialises as the text the rule
 * wrote (run records and `plan` show `/Completed$/`, never a compiled object).
 */
export class CompiledPattern {
  readonly regex: RegExp;
  constructor(readonly source: string) {
    this.regex = new RegExp(source);
    Object.freeze(this);
  }
  test(text: string): RegExpExecArray | null {
    return this.regex.exec(text);
  }
  toString(): string {
    return this.source;
  }
  toJSON(): string {
    return this.source;
  }
}

/** A regular expression (JavaScript syntax) as a rule writes it; an invalid one is a load error. */
export const Pattern = z.string().transform((source, ctx) => {
  try {
    return new CompiledPattern(source);
  } catch (err) {
    const why = (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    ctx.addIssue({ code: 'custom', message: `/${source}/ is not a valid regular expression: ${why}` });
    return z.NEVER;
  }
});
