/**
 * The dependency direction of src/ (docs/architecture.md), checked by `npm run lint`:
 *
 *   cli, serve, client, exporter → receiver, console, queue → engine → rules → actions, checks, escalation
 *     → template, duration, http, prometheus, alertmanager, supervisor, config, log, metrics
 *
 * Each layer may import the layers below it, never one above. rules/ sits above the plugins because the rule
 * schema is built from their registries (a plugin's spec schema beside its code); the plugins never import rules/.
 * Outside src/: scripts/ (the demo and the stack launchers it shares with the tests) never imports test/.
 */
const layer = (...paths) => `^src/(${paths.join('|')})`;
const TOP = layer(
  'cli\\.ts',
  'serve\\.ts',
  'serve-main\\.ts',
  'serve-processes\\.ts',
  'ipc-command\\.ts',
  'client/',
  'exporter/',
);
const EDGE = layer('receiver/', 'console/', 'queue/');
const ENGINE = layer('engine/');
const RULES = layer('rules/');
const PLUGINS = layer('actions/', 'checks/', 'escalation/');
const BASE = layer(
  'template\\.ts',
  'duration\\.ts',
  'http/',
  'prometheus/',
  'alertmanager/',
  'supervisor/',
  'config\\.ts',
  'redis-settings\\.ts',
  'routes\\.ts',
  'target\\.ts',
  'log\\.ts',
  'metrics\\.ts',
  'metrics-aggregate\\.ts',
  'build-info\\.ts',
  'procfs\\.ts',
  'heap-compaction\\.ts',
);

const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: to } });

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A cycle makes two modules one; split the concept they share.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    forbid(
      'base-stays-below',
      'Clients, config and leaf modules know nothing of plugins, rules, the engine or the service.',
      BASE,
      `${PLUGINS}|${RULES}|${ENGINE}|${EDGE}|${TOP}`,
    ),
    forbid(
      'plugins-stay-below-rules',
      'Actions, checks and escalation targets never import the rules, the engine or the service.',
      PLUGINS,
      `${RULES}|${ENGINE}|${EDGE}|${TOP}`,
    ),
    forbid(
      'rules-stay-below-engine',
      'The rule model and loader never import the engine or the service.',
      RULES,
      `${ENGINE}|${EDGE}|${TOP}`,
    ),
    forbid(
      'engine-stays-below-edge',
      'The engine never imports the queue, the receiver or the entry points.',
      ENGINE,
      `${EDGE}|${TOP}`,
    ),
    forbid('edge-stays-below-top', 'Receiver, console and queue never import the entry points.', EDGE, TOP),
    forbid('queue-not-receiver', 'The queue never imports the HTTP side.', layer('queue/'), layer('receiver/', 'console/')),
    forbid(
      'scripts-not-test',
      'The demo and scripts/lib run without the test tree: tests import scripts/lib, never the other way.',
      '^scripts/',
      '^test/',
    ),
    forbid(
      'bench-not-test',
      'The benchmark runs without the test tree: what it shares with tests is in scripts/lib.',
      '^bench/',
      '^test/',
    ),
    {
      name: 'engine-without-transport',
      comment: 'The engine never imports Express, BullMQ or ioredis: the queue maps them to it.',
      severity: 'error',
      from: { path: `${ENGINE}|${RULES}|${PLUGINS}` },
      to: { path: 'node_modules/(express|bullmq|ioredis)/' },
    },
    // What each process loads at start (docs/benchmark.md, idle RSS): a role loads only what it uses.
    {
      name: 'axios-on-first-request',
      comment: 'axios (~6 MiB resident) is imported on the first request (http/client.ts loadAxios), not at start.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: 'node_modules/axios/', dynamic: false, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'bullmq-by-class',
      comment: "BullMQ's classes come from their own files: its index loads every class it has (~5 MiB resident).",
      severity: 'error',
      from: { path: '^src/' },
      to: { path: 'node_modules/bullmq/dist/cjs/index\\.js$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'serve-loads-roles-lazily',
      comment:
        "serve.ts imports a role's side when the role starts: the worker's (engine, BullMQ's Worker) and the HTTP side's (Express, the console) with await import().",
      severity: 'error',
      from: { path: '^src/serve\\.ts$' },
      to: {
        path: '^src/(queue/(worker|intake)|engine/(admission|run|step|escalate)|console/|receiver/app)',
        dynamic: false,
        dependencyTypesNot: ['type-only'],
      },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
