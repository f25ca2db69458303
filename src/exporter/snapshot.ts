/**
 * What the exporter remembers between scrapes, for diagnostics: the last `hello` answer and the last good
 * (`ok: true`) `state` answer, each with when it came, and a summary of the last scrape. P1-004 escalates with
 * "the hello answer and the last good state": when the control loop is too starved to answer `state`, this is
 * the runtime snapshot there is (GET /snapshot).
 *
 * The answers are kept as the lines the server wrote and served inside the JSON as they are, so every digit of
 * the `*_unix_nanos` values survives (a JSON.parse round trip would round them).
 */
import type { Measurement, Stage } from './collect.js';

interface Kept {
  at: number;
  line: string;
}

export interface LastScrape {
  at: number;
  ipcUp: boolean;
  stateOk: boolean;
  stateTimedOut: boolean;
  stateSeconds: number;
  errors: Partial<Record<Stage, string>>;
}

export class Snapshot {
  private hello: Kept | undefined;
  private state: Kept | undefined;
  private last: LastScrape | undefined;
  private target: string | undefined;

  record(m: Measurement): void {
    if (m.hello.answered && m.hello.line !== undefined) this.hello = { at: m.at, line: m.hello.line };
    if (m.state.ok && m.state.state !== undefined && m.state.line !== undefined) this.state = { at: m.at, line: m.state.line };
    if (m.targetId !== undefined) this.target = m.targetId;
    this.last = {
      at: m.at,
      ipcUp: m.hello.answered,
      stateOk: m.state.ok,
      stateTimedOut: m.state.timedOut,
      stateSeconds: m.state.seconds,
      errors: m.errors,
    };
  }

  /** The target id learned from an answer (or configured), remembered once known. */
  get targetId(): string | undefined {
    return this.target;
  }

  /** Unix seconds of the last good state answer. */
  get lastGoodStateAt(): number | undefined {
    return this.state === undefined ? undefined : this.state.at / 1000;
  }

  /**
   * `{"target_id":…,"last_scrape":{…},"hello":{"at":ISO,"answer":<line>},"last_good_state":{"at":ISO,"answer":<line>}}`;
   * a part never seen is null.
   */
  toJson(): string {
    const kept = (k: Kept | undefined) => (k === undefined ? 'null' : `{"at":${JSON.stringify(iso(k.at))},"answer":${k.line}}`);
    const last =
      this.last === undefined
        ? 'null'
        : JSON.stringify({
            at: iso(this.last.at),
            ipc_up: this.last.ipcUp,
            state_ok: this.last.stateOk,
            state_timed_out: this.last.stateTimedOut,
            state_seconds: this.last.stateSeconds,
            errors: this.last.errors,
          });
    return `{"target_id":${JSON.stringify(this.target ?? null)},"last_scrape":${last},"hello":${kept(this.hello)},"last_good_state":${kept(this.state)}}`;
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
