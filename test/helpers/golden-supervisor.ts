/**
 * A stand-in supervisor socket for unit tests of the exporter and the `ipc` action: it answers each method with a
 * golden answer line (`test/fixtures/ipc/*.ndjson`), its request_id replaced by the caller's, or hangs (a stalled
 * control loop: `state` never answers while `hello` does), or closes. Integration tests use the simulator
 * (`sim/`) instead; this one only replays what the transcripts recorded.
 */
import { parseWireJson } from '../../src/supervisor/json.js';
import { loadGolden } from './ipc-golden.js';
import { startLineServer, type LineServer } from './line-server.js';

export type Answer = string | 'hang' | 'close';

export interface FakeSupervisor extends LineServer {
  /** What `method` gets from now on: an answer line (its request_id is replaced), `hang` or `close`. */
  answers: Map<string, Answer>;
  /** The parsed request lines received so far. */
  requests(): { method: string; params: Record<string, unknown>; request_id: string }[];
}

/** The answer line of exchange `index` of a golden transcript. */
export function goldenAnswer(name: string, index = 0): string {
  const exchange = loadGolden(name).exchanges[index];
  if (exchange === undefined) throw new Error(`golden ${name} has no exchange ${index}`);
  return exchange.response;
}

export async function startFakeSupervisor(answers: Record<string, Answer>): Promise<FakeSupervisor> {
  const table = new Map(Object.entries(answers));
  const server = await startLineServer((line) => {
    let request: { method?: string; request_id?: string };
    try {
      request = parseWireJson(line) as typeof request;
    } catch {
      return 'close';
    }
    const answer = table.get(request.method ?? '') ?? 'close';
    if (answer === 'hang' || answer === 'close') return answer === 'hang' ? undefined : 'close';
    const id = JSON.stringify(request.request_id ?? '');
    return `${answer.replace(/^\{"request_id":"(?!invalid-request")[^"]*"/, `{"request_id":${id}`)}\n`;
  });
  return Object.assign(server, {
    answers: table,
    requests: () => server.lines.map((l) => parseWireJson(l) as ReturnType<FakeSupervisor['requests']>[number]),
  });
}
