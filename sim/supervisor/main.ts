/**
 * A simulated host application of rust-tokio-supervisor: `Supervisor::start_from_config_file` plus one task per
 * configured child, as a real process (see sim/README.md).
 *
 *   node --import tsx sim/supervisor/main.ts --config sim/examples/supervisor.yaml
 *
 * Start-up order is the real one (runtime/supervisor.rs:51-70): the runtime and its children start, then the IPC
 * config is validated and the socket bound; a failure there ends the process as `main() -> Result` does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { unixNanosNow } from '../../src/supervisor/json.js';
import { createAdminServer } from './admin.js';
import { bindIpc, IpcBindError, removeSocket } from './bind.js';
import { IpcConfigError, loadSimConfig, validateIpc, type Behavior, type IpcSettings } from './config.js';
import { ControlLoop } from './control-loop.js';
import { createIpcService } from './ipc-server.js';
import { fatalConfigExit, panicMain } from './panic.js';
import { startRegistrationHeartbeat } from './registration.js';
import { Runtime } from './runtime.js';
import type { TaskSpec } from './tasks.js';

const { values } = parseArgs({ options: { config: { type: 'string' } }, strict: true });
if (values.config === undefined) {
  process.stderr.write('usage: supervisor --config FILE\n');
  process.exit(2);
}
const config = loadSimConfig(values.config);
const sim = config.sim;

// The host binary's name, as /proc/<pid>/comm shows it (Linux keeps 15 characters).
process.title = sim.process_name;
if (existsSync('/proc/self/comm')) {
  const comm = readFileSync('/proc/self/comm', 'utf8').trim();
  if (comm !== sim.process_name.slice(0, 15)) {
    process.stderr.write(`sim: process name is ${comm}, expected ${sim.process_name.slice(0, 15)}\n`);
    process.exit(2);
  }
}

const event = (text: string) => {
  if (sim.lifecycle_log) process.stdout.write(`${text}\n`);
};

const faults = new Map<string, { behavior?: Behavior; panicAfterMs?: number; hogMs?: number }>();
const taskSpec = (childId: string): TaskSpec => {
  const child = config.children.find((c) => c.name === childId);
  const fault = faults.get(childId);
  return {
    behavior: fault?.behavior ?? child?.behavior ?? 'normal',
    panicAfterMs: fault?.panicAfterMs ?? child?.panic_after_ms ?? 500,
    heartbeatMs: child?.heartbeat_ms ?? 0,
    hogMs: fault?.hogMs ?? 0,
    panicLocation: `src/tasks/${childId}.rs:31:13`,
  };
};

const loop = new ControlLoop();
const runtime = new Runtime(config, {
  post: (fn) => loop.post(fn),
  starve: () => loop.stall('block_forever'),
  hog: (task, ms) => loop.hog(task, ms),
  event,
  taskSpec,
});
loop.post(() => runtime.startDeclared());

let ipc: IpcSettings | undefined;
try {
  ipc = validateIpc(config);
} catch (err) {
  if (err instanceof IpcConfigError) fatalConfigExit(`dashboard IPC startup failed: ${err.message}`);
  throw err;
}

const generatedAt = unixNanosNow();
let socketOwned = false;
const cleanup = () => {
  if (socketOwned && ipc !== undefined) removeSocket(ipc.path);
  socketOwned = false;
};

if (ipc !== undefined) {
  const settings = ipc;
  const server = createIpcService({ ipc: settings, config, loop, runtime, generatedAt });
  try {
    await bindIpc(server, settings);
  } catch (err) {
    if (err instanceof IpcBindError) fatalConfigExit(`dashboard IPC startup failed: ${err.message}`);
    throw err;
  }
  socketOwned = true;
  startRegistrationHeartbeat(settings);

  let stallTimer: NodeJS.Timeout | undefined;
  const admin = createAdminServer({
    panic: (message) => panicMain(sim.panic_location, message, cleanup),
    setBehavior(child, behavior, panicAfterMs) {
      if (!config.children.some((c) => c.name === child)) return false;
      faults.set(child, { ...faults.get(child), behavior, panicAfterMs });
      loop.post(() => runtime.slots.get(child)?.task?.become(taskSpec(child)));
      // a busy loop in a running attempt takes its worker at once (the posted message above would never run)
      if (behavior === 'block_forever' && runtime.slots.get(child)?.task) loop.stall('block_forever');
      return true;
    },
    hog(child, ms) {
      if (!config.children.some((c) => c.name === child)) return false;
      faults.set(child, { ...faults.get(child), hogMs: ms });
      // the running attempt starts hogging at once (a posted message would itself come late only afterwards)
      runtime.slots.get(child)?.task?.become(taskSpec(child));
      return true;
    },
    stall(ms) {
      clearTimeout(stallTimer);
      loop.stall('admin');
      if (ms !== undefined) stallTimer = setTimeout(() => loop.unstall('admin'), ms);
    },
    unstall() {
      clearTimeout(stallTimer);
      loop.unstall('admin');
    },
    slow(ms) {
      loop.slowMs = ms;
    },
  });
  const adminPath = sim.admin_socket ?? `${settings.path}.admin`;
  removeSocket(adminPath);
  admin.listen(adminPath);
  process.on('exit', () => removeSocket(adminPath));
}

let stopping = false;
const graceful = () => {
  if (stopping) return;
  stopping = true;
  // The host's shutdown goes through the control loop like any command: a starved loop never finishes it.
  void loop
    .request(() => runtime.shutdownTree('host', 'signal'))
    .then(() => {
      cleanup();
      process.exit(0);
    });
};
process.on('SIGINT', graceful);
if (sim.sigterm === 'graceful') process.on('SIGTERM', graceful);
else
  process.on('SIGTERM', () => {
    process.kill(process.pid, 'SIGKILL'); // no handler in the host: the process dies where it stands
  });
