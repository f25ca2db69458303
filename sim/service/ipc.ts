/** `sim/bin/ipc SOCKET METHOD [PARAMS-JSON]`: one exchange through remediator's client; exit codes of runIpcQuery. */
import { runIpcQuery } from '../../src/supervisor/cli.js';
import { parseWireJson } from '../../src/supervisor/json.js';

const [path, method, params] = process.argv.slice(2);
if (path === undefined || method === undefined) {
  process.stderr.write('usage: ipc SOCKET METHOD [PARAMS-JSON]\n');
  process.exit(2);
}
const parsed = params === undefined ? {} : (parseWireJson(params) as Record<string, unknown>);
// Nanosecond timestamps above 2^53 come out of parseWireJson as strings; the server wants a bare integer.
if (typeof parsed.requested_at_unix_nanos === 'string') parsed.requested_at_unix_nanos = BigInt(parsed.requested_at_unix_nanos);
const result = await runIpcQuery({ path, method, params: parsed });
process.stdout.write(`${result.output}\n`);
process.exit(result.exitCode);
