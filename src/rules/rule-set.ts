import { formatProblem, loadRules, type RuleProblem } from './load.js';
import type { Procedure } from './schema.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface ReloadOutcome {
  ok: boolean;
  /** Procedures loaded now (the old set's when the reload was refused). */
  procedures: string[];
  /** Every problem of the refused set, as `file:line: path: message`. */
  problems: string[];
  at: string;
}

/**
 * The loaded procedures, replaceable at run time (`/-/reload`, SIGHUP) the way Prometheus reloads its rule files:
 * a new set is taken only when every file in it is valid; otherwise the old one stays and the reload reports why.
 *
 * `procedures` and `byId` are live views: the same array and map objects, whose contents are swapped in one
 * synchronous step, so the receiver and the worker (which hold these objects) see the new set at once. A run
 * already in progress keeps the Procedure object it started with; the next alert gets the new one.
 */
export class RuleSet {
  readonly procedures: Procedure[] = [];
  readonly byId = new Map<string, Procedure>();
  private last: ReloadOutcome;
  private readonly listeners: ((outcome: ReloadOutcome) => void)[] = [];

  constructor(
    readonly dir: string,
    initial: readonly Procedure[],
    private readonly env: Env = process.env,
  ) {
    this.replace(initial);
    this.last = { ok: true, procedures: initial.map((p) => p.id), problems: [], at: new Date().toISOString() };
  }

  private replace(next: readonly Procedure[]): void {
    this.procedures.splice(0, this.procedures.length, ...next);
    this.byId.clear();
    for (const p of next) this.byId.set(p.id, p);
  }

  /** Reads the directory again; takes the new set only when it has no problem and at least one procedure. */
  reload(): ReloadOutcome {
    const { procedures, problems } = loadRules(this.dir, this.env);
    const refused: RuleProblem[] = [...problems];
    if (procedures.length === 0 && refused.length === 0)
      refused.push({ file: this.dir, path: '', message: 'no procedures: refusing an empty rule set' });
    const at = new Date().toISOString();
    if (refused.length === 0) {
      this.replace(procedures);
      this.last = { ok: true, procedures: procedures.map((p) => p.id), problems: [], at };
    } else {
      this.last = { ok: false, procedures: this.procedures.map((p) => p.id), problems: refused.map(formatProblem), at };
    }
    for (const l of this.listeners) l(this.last);
    return this.last;
  }

  lastReload(): ReloadOutcome {
    return this.last;
  }

  /** Called after every reload attempt, taken or refused (metrics, logs). */
  onReload(listener: (outcome: ReloadOutcome) => void): void {
    this.listeners.push(listener);
  }
}
