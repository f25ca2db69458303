/**
 * Hostile input, end to end (issue 4 item 9): every case of test/fixtures/hostile/ is POSTed to the real service
 * (receiver + worker in-process, real Redis, fake Prometheus). A rule set whose every action would reveal an
 * injection runs for each accepted alert:
 *   argv    exec `node -e <append argv as JSON to a file>` with `{{ labels.x }}` and `pre{{ labels.x }}` as arguments
 *   url     http GET  <recorder>/hook/<case>/{{ labels.x }}?q={{ labels.x }}   (the recorder keeps the raw request line)
 *   header  http GET  <recorder>/header/<case> with `X-Hostile: {{ labels.x }}`
 *   promql  expect    hostile_probe{case="<case>", x="{{ labels.x }}"}         (the fake Prometheus keeps every query)
 *   pidfile signal    SIGTERM to the pid in `<dir>/pids/{{ labels.x }}.pid`; a decoy process whose pid file sits at
 *                     `<dir>/victim.pid` (one `../` away) must survive, and shell payloads `touch` files in <dir>/pwned.
 * Each case must get the 4xx its index entry names (with the field path for a 400), or each sink must receive the
 * value exactly (escaped) or refuse it. Anything that reached a sink in another form is "executed unintended".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parser } from '@prometheus-io/lezer-promql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { RunRecord } from '../../src/engine/record.js';
import { silentLogger } from '../../src/log.js';
import { loadRulesOrThrow } from '../../src/rules/load.js';
import { startService, type Running } from '../../src/serve.js';
import { startFakePrometheus, type FakePrometheus } from '../helpers/fake-prometheus.js';
import { webhookPayload } from '../helpers/payload.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

type SinkOutcome = 'exact' | 'replaced' | 'refused' | 'not-signalled' | 'signalled';
interface Sinks {
  argv: SinkOutcome;
  url: SinkOutcome;
  header: SinkOutcome;
  promql: SinkOutcome;
  pidFile: SinkOutcome;
}
interface HostileCase {
  name: string;
  file?: string;
  generate?: string;
  what: string;
  expect: { status: number; path?: string; error?: string; ignored?: number; run?: boolean; x?: string; sinks?: Sinks };
}

const TOKEN = 'hostile-input-token-0123456789';
const corpusDir = new URL('../fixtures/hostile/', import.meta.url);
const corpus = (JSON.parse(readFileSync(new URL('index.json', corpusDir), 'utf8')) as { cases: HostileCase[] }).cases;
const STARTS = '2026-11-28T07:17:26.321Z';

const ARGV_SCRIPT = "require('fs').appendFileSync(process.env.OUT, JSON.stringify(process.argv.slice(1)) + '\\n')";
const EXPECTED_PROMQL_NODES = [
  'PromQL',
  'VectorSelector',
  'Identifier',
  'LabelMatchers',
  ...Array(2).fill(['UnquotedLabelMatcher', 'LabelName', 'MatchOp', 'EqlSingle', 'StringLiteral']).flat(),
];

/** Go's strconv.Unquote for a double-quoted literal, as Prometheus reads one (only the escapes we produce or meet). */
function goUnquote(literal: string): string {
  if (!(literal.startsWith('"') && literal.endsWith('"') && literal.length >= 2)) throw new Error(`not a literal: ${literal}`);
  const body = literal.slice(1, -1);
  const simple: Record<string, string> = {
    a: '\x07',
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
    '\\': '\\',
    '"': '"',
  };
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '"' || c === '\n') throw new Error(`unescaped ${JSON.stringify(c)} inside a literal`);
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[++i];
    if (e === undefined || simple[e] === undefined) throw new Error(`escape \\${e} not produced by remediator`);
    out += simple[e];
  }
  return out;
}

function promqlShape(query: string): { nodes: string[]; literals: string[] } {
  const nodes: string[] = [];
  const literals: string[] = [];
  parser.parse(query).iterate({
    enter: (n) => {
      nodes.push(n.type.isError ? '⚠' : n.name);
      if (n.name === 'StringLiteral') literals.push(query.slice(n.from, n.to));
    },
  });
  return { nodes, literals };
}

/** What axios 1.21 does to a header value (lib/helpers/sanitizeHeaderValue.js + the byte-string pass): strip, trim. */
function axiosStripped(value: string): string {
  return value.replace(/[^\t\x20-\x7e\x80-\xff]+/g, '').replace(/^[ \t]+|[ \t]+$/g, '');
}

/** A process that does nothing until signalled; `exited` tells whether anything killed it. */
function decoy(): { child: ChildProcess; exited: () => boolean } {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
  let gone = false;
  child.once('exit', () => (gone = true));
  return { child, exited: () => gone };
}

interface Recorded {
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
}

describe('integration: hostile webhook input cannot change what runs (real Redis, real service)', () => {
  const prefix = testPrefix('hostile');
  const dir = mkdtempSync(join(tmpdir(), 'remediator-hostile-'));
  const out = join(dir, 'argv.jsonl');
  const pids = join(dir, 'pids');
  const pwned = join(dir, 'pwned');
  let prom: FakePrometheus;
  let recorder: Server;
  const requests: Recorded[] = [];
  let running: Running;
  let base: string;
  const legit = decoy();
  const victim = decoy();

  beforeAll(async () => {
    await requireRedis();
    mkdirSync(pids);
    mkdirSync(pwned);
    writeFileSync(join(pids, 'legit.pid'), `${legit.child.pid}\n`);
    writeFileSync(join(dir, 'victim.pid'), `${victim.child.pid}\n`);
    prom = await startFakePrometheus();
    // Large header limit: the 16 KiB label value arrives percent-encoded, twice, in the request line.
    recorder = createServer({ maxHeaderSize: 1 << 20 }, (req, res) => {
      requests.push({ url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
    const recorderUrl = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
    const rules = join(dir, 'rules');
    mkdirSync(rules);
    const j = JSON.stringify;
    writeFileSync(
      join(rules, 'hostile-001.yaml'),
      `id: HOSTILE-001
title: Hostile input probe
match: ['alertname="HostileProbe"']
target: "{{ labels.case }}"
vars: { base: ${j(recorderUrl)}, piddir: ${j(pids)} }
steps:
  - name: argv
    action: { exec: { command: [${j(process.execPath)}, "-e", ${j(ARGV_SCRIPT)}, "{{ labels.case }}", "{{ labels.x }}", "pre{{ labels.x }}"], env: { OUT: ${j(out)} }, timeout: 10s } }
    onFailure: continue
  - name: url
    action: { http: { method: GET, url: "{{ vars.base }}/hook/{{ labels.case }}/{{ labels.x }}?q={{ labels.x }}", timeout: 5s } }
    onFailure: continue
  - name: header
    action: { http: { method: GET, url: "{{ vars.base }}/header/{{ labels.case }}", headers: { X-Hostile: "{{ labels.x }}" }, timeout: 5s } }
    onFailure: continue
  - name: promql
    expect: { promql: 'hostile_probe{case="{{ labels.case }}", x="{{ labels.x }}"}', op: "==", value: 1 }
    onFailure: continue
  - name: pidfile
    action: { signal: { pidFile: "{{ vars.piddir }}/{{ labels.x }}.pid", signal: SIGTERM } }
    onFailure: continue
`,
    );
    // Issue 9, regex class: a matcher a backtracking engine takes 2^n steps for on `aaa…a!`; RE2 is linear.
    writeFileSync(
      join(rules, 'hostile-002.yaml'),
      `id: HOSTILE-002
title: Backtracking-prone matcher
match: ['alertname="HostileProbe"', 'x=~"(a+)+b"']
target: "{{ labels.case }}"
steps:
  - name: note
    action: { wait: { duration: 1ms } }
`,
    );
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      PROMETHEUS_URL: prom.url,
      RULES_DIR: rules,
      WEBHOOK_TOKEN: TOKEN,
      // The fixtures carry fixed dates: no incident is too old for this test (MAX_INCIDENT_AGE).
      RUN_RETENTION: '3650d',
      MAX_INCIDENT_AGE: '3649d',
      // WEBHOOK_MAX_BYTES stays at its 5 MB default: the 1,000-alert payload fits, the 10 MB body does not.
      POLL_INTERVAL: '100ms',
      STORM_TARGETS: '100000',
    });
    running = await startService(config, loadRulesOrThrow(rules, {}), silentLogger, { receiver: true, worker: true });
    base = `http://127.0.0.1:${running.port}`;
  });

  afterAll(async () => {
    await running?.stop();
    await prom?.close();
    recorder?.close();
    legit.child.kill('SIGKILL');
    victim.child.kill('SIGKILL');
    await cleanupPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (body: Buffer | string, headers: Record<string, string> = {}) =>
    fetch(`${base}/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers },
      body,
    });

  /** A firing payload of one HostileProbe alert (for the generated cases); `extra` top-level fields. */
  const probe = (caseId: string, x: string, extra: Record<string, unknown> = {}) => ({
    ...webhookPayload({ alertname: 'HostileProbe', labels: { case: caseId, x }, annotations: {}, startsAt: STARTS }),
    ...extra,
  });
  const many = (n: number) =>
    JSON.stringify(
      webhookPayload(
        ...Array.from({ length: n }, (_, i) => ({
          alertname: 'NoProcedureMatchesThis',
          labels: { i: String(i) },
          annotations: {},
          startsAt: STARTS,
        })),
      ),
    );

  /** The body (and extra headers) of one case, and the x label value its alert carries, if any. */
  function build(c: HostileCase, caseId: string): { body: Buffer; headers?: Record<string, string>; x?: string } {
    const fill = (s: string) => s.replaceAll('CASE', caseId).replaceAll('PWNED', pwned);
    if (c.file !== undefined) {
      const body = Buffer.from(fill(readFileSync(new URL(c.file, corpusDir), 'utf8')), 'utf8');
      return { body, ...(c.expect.x !== undefined ? { x: fill(c.expect.x) } : {}) };
    }
    switch (c.generate) {
      case 'body-10mb':
        return { body: Buffer.from(JSON.stringify({ ...probe(caseId, 'a'), pad: 'x'.repeat(10 * 1024 * 1024) })) };
      case 'gzip-bomb':
        return {
          body: gzipSync(JSON.stringify({ ...probe(caseId, 'a'), pad: '0'.repeat(20 * 1024 * 1024) })),
          headers: { 'content-encoding': 'gzip' },
        };
      case 'charset-utf16':
        return {
          body: Buffer.from(JSON.stringify(probe(caseId, 'a'))),
          headers: { 'content-type': 'application/json; charset=utf-16' },
        };
      case 'invalid-utf8-bytes': {
        const text = JSON.stringify(probe(caseId, 'a__b'));
        const [head, tail] = text.split('__') as [string, string];
        return { body: Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe]), Buffer.from(tail)]), x: 'a\ufffd\ufffdb' };
      }
      case 'label-value-16k': {
        // Ends with a letter: HTTP drops leading and trailing spaces of a header value (RFC 9110 §5.5).
        const x = `${'$(id);"} or vector(1) or {"'.repeat(1000).slice(0, 16 * 1024 - 1)}Z`;
        return { body: Buffer.from(JSON.stringify(probe(caseId, x))), x };
      }
      case 'alerts-1000':
        return { body: Buffer.from(many(1000)) };
      case 'alerts-1001':
        return { body: Buffer.from(many(1001)) };
      case 'deep-nesting-alerts':
        return { body: Buffer.from(`{"version":"4","status":"firing","alerts":[${'['.repeat(100_000)}${']'.repeat(100_000)}]}`) };
      case 'deep-nesting-label': {
        const text = JSON.stringify(probe(caseId, '__'));
        return { body: Buffer.from(text.replace('"__"', `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`)) };
      }
      case 'deep-nesting-unknown-key': {
        const text = JSON.stringify(probe(caseId, 'deep', { extra: '__' }));
        return { body: Buffer.from(text.replace('"__"', `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`)), x: 'deep' };
      }
      // Issue 9 classes.
      case 'content-type-text-plain':
        return { body: Buffer.from(JSON.stringify(probe(caseId, 'a'))), headers: { 'content-type': 'text/plain;charset=UTF-8' } };
      case 'content-type-form':
        return {
          body: Buffer.from(JSON.stringify(probe(caseId, 'a'))),
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        };
      case 'content-type-missing':
        return { body: Buffer.from(JSON.stringify(probe(caseId, 'a'))), headers: { 'content-type': '' } };
      case 'groupkey-oversized':
        return { body: Buffer.from(JSON.stringify(probe(caseId, 'a', { groupKey: 'g'.repeat(8 * 1024 + 1) }))) };
      case 'receiver-oversized':
        return { body: Buffer.from(JSON.stringify(probe(caseId, 'a', { receiver: 'r'.repeat(1024 + 1) }))) };
      case 'external-url-oversized':
        return { body: Buffer.from(JSON.stringify(probe(caseId, 'a', { externalURL: `http://${'e'.repeat(4096)}` }))) };
      case 'labels-129': {
        const p = probe(caseId, 'a');
        Object.assign(p.alerts[0]!.labels, Object.fromEntries(Array.from({ length: 126 }, (_, i) => [`l${i}`, 'v'])));
        return { body: Buffer.from(JSON.stringify(p)) };
      }
      case 'alert-label-text-over-64k': {
        const p = probe(caseId, 'a');
        Object.assign(
          p.alerts[0]!.annotations,
          Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`a${i}`, 'v'.repeat(15_000)])),
        );
        return { body: Buffer.from(JSON.stringify(p)) };
      }
      case 'label-empty':
        return { body: Buffer.from(JSON.stringify(probe(caseId, ''))), x: '' };
      case 'label-dotdot-segment-inside':
        return { body: Buffer.from(JSON.stringify(probe(caseId, 'a/../../b'))), x: 'a/../../b' };
      case 'label-regex-metacharacters':
        return { body: Buffer.from(JSON.stringify(probe(caseId, '.*'))), x: '.*' };
      case 'regex-catastrophic-label': {
        const x = `${'a'.repeat(40)}!`;
        return { body: Buffer.from(JSON.stringify(probe(caseId, x))), x };
      }
      case 'startsat-replay':
      case 'startsat-future': {
        const p = probe(caseId, 'a');
        p.alerts[0]!.startsAt = c.generate === 'startsat-replay' ? '2000-01-01T00:00:00Z' : '2100-01-01T00:00:00Z';
        return { body: Buffer.from(JSON.stringify(p)) };
      }
      default:
        throw new Error(`unknown generated case ${c.generate}`);
    }
  }

  /** Header values sent altered (characters stripped by axios) where the index says the sink must refuse them. */
  const altered: string[] = [];

  it(`answers every case of the corpus (${corpus.length}) as its index says, and nothing runs that the rules did not say`, async () => {
    const mismatches: string[] = [];
    const unintended: string[] = [];
    let rejected = 0;
    let escaped = 0;
    const accepted: { c: HostileCase; caseId: string; x: string; runId: string }[] = [];
    const notRun: string[] = [];

    for (const [i, c] of corpus.entries()) {
      const caseId = `case-${i}`;
      const { body, headers, x } = build(c, caseId);
      const res = await post(body, headers);
      const text = await res.text();
      const where = `${c.name} (${caseId})`;
      if (res.status !== c.expect.status) {
        mismatches.push(`${where}: HTTP ${res.status}, expected ${c.expect.status}: ${text.slice(0, 300)}`);
        continue;
      }
      if (res.status >= 400 && res.status < 500) {
        rejected++;
        const answer = JSON.parse(text) as { error: string; issues?: { path: string; message: string }[] };
        if (c.expect.path !== undefined && !answer.issues?.some((is) => is.path === c.expect.path)) {
          mismatches.push(`${where}: 400 without the path ${c.expect.path}: ${text.slice(0, 300)}`);
        }
        if (c.expect.error !== undefined && !answer.error.includes(c.expect.error))
          mismatches.push(`${where}: error ${answer.error}`);
        continue;
      }
      escaped++;
      const answer = JSON.parse(text) as {
        enqueued: number;
        ignored: number;
        alerts: { result: string; runId?: string; procedure?: string }[];
      };
      if (c.expect.ignored !== undefined && answer.ignored !== c.expect.ignored)
        mismatches.push(`${where}: ignored ${answer.ignored}, expected ${c.expect.ignored}`);
      if (c.expect.run === false || c.expect.sinks === undefined) {
        if (answer.enqueued !== 0)
          unintended.push(`${where}: ${answer.enqueued} run(s) enqueued for an alert no procedure matches`);
        notRun.push(caseId);
        continue;
      }
      const runIds = answer.alerts.flatMap((a) => (a.runId ? [a.runId] : []));
      if (answer.enqueued !== 1 || runIds.length !== 1 || answer.alerts[0]?.procedure !== 'HOSTILE-001') {
        mismatches.push(`${where}: expected one HOSTILE-001 run: ${text.slice(0, 300)}`);
        continue;
      }
      accepted.push({ c, caseId, x: x!, runId: runIds[0]! });
    }

    // Let every accepted run finish.
    const runs = new Map<string, RunRecord>();
    for (const a of accepted) {
      const run = await waitFor(
        `run of ${a.c.name}`,
        async () => {
          const res = await fetch(`${base}/api/remediations/${encodeURIComponent(a.runId)}`, {
            headers: { authorization: `Bearer ${TOKEN}` },
          });
          const r = (await res.json()) as RunRecord;
          return ['succeeded', 'failed', 'escalated', 'cancelled', 'skipped'].includes(r.state) ? r : undefined;
        },
        60_000,
      );
      runs.set(a.caseId, run);
    }

    const argvLines = existsSync(out)
      ? readFileSync(out, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as string[])
      : [];
    const known = new Set(accepted.map((a) => a.caseId));
    // Anything that reached a sink for a case that was never meant to run, or under a name we did not send.
    for (const line of argvLines)
      if (!known.has(line[0]!)) unintended.push(`exec ran with argv ${JSON.stringify(line).slice(0, 200)}`);
    for (const r of requests) {
      const m = /^\/(hook|header)\/(case-\d+)(\/|$|\?)/.exec(r.url);
      if (!m || !known.has(m[2]!)) unintended.push(`HTTP request to an unexpected path: ${r.url.slice(0, 200)}`);
    }
    for (const q of prom.queries()) {
      const shape = promqlShape(q);
      if (JSON.stringify(shape.nodes) !== JSON.stringify(EXPECTED_PROMQL_NODES))
        unintended.push(`PromQL query with another shape reached Prometheus: ${q.slice(0, 200)} → ${shape.nodes.join(' ')}`);
    }
    for (const id of notRun) {
      if (
        argvLines.some((l) => l[0] === id) ||
        requests.some((r) => new RegExp(`/${id}(/|\\?|$)`).test(r.url)) ||
        prom.queries().some((q) => q.includes(`"${id}"`))
      )
        unintended.push(`${id}: something ran for an alert no procedure matches`);
    }

    for (const { c, caseId, x, runId } of accepted) {
      const where = `${c.name} (${caseId})`;
      const sinks = c.expect.sinks!;
      const run = runs.get(caseId)!;
      const step = (name: string) => run.steps.find((s) => s.name === name);
      // What a child process or a UTF-8 encoder receives: lone surrogates become U+FFFD (String#toWellFormed, ES2024).
      const xw = x.replace(/\p{Cs}/gu, '\ufffd');
      const refusedBeforeRunning = (name: string) =>
        step(name)?.status === 'failed' && /^not run: .*labels\.x/.test(step(name)?.reason ?? '');
      if (run.procedure !== 'HOSTILE-001' || run.id !== runId) mismatches.push(`${where}: run ${run.id} of ${run.procedure}`);

      // argv: one line, exactly [case, x, "pre" + x]: each value one element, no shell, no splitting.
      const lines = argvLines.filter((l) => l[0] === caseId);
      if (sinks.argv === 'refused') {
        if (lines.length > 0) unintended.push(`${where}: exec ran with ${JSON.stringify(lines)}`);
        if (!refusedBeforeRunning('argv'))
          mismatches.push(`${where}: argv step not refused: ${step('argv')?.status} ${step('argv')?.reason}`);
      } else if (lines.length !== 1 || JSON.stringify(lines[0]) !== JSON.stringify([caseId, xw, `pre${xw}`])) {
        (lines.length > 1 || lines.some((l) => l.length !== 3) ? unintended : mismatches).push(
          `${where}: argv ${JSON.stringify(lines).slice(0, 200)}, step ${step('argv')?.status} ${step('argv')?.reason}`,
        );
      }

      // url: one request; the value is one path segment and the one query value, percent-encoded.
      const hooks = requests.filter((r) => r.url.startsWith(`/hook/${caseId}/`) || r.url === `/hook/${caseId}`);
      if (sinks.url === 'refused') {
        if (hooks.length > 0) unintended.push(`${where}: URL request sent: ${hooks[0]!.url.slice(0, 200)}`);
        if (!refusedBeforeRunning('url')) mismatches.push(`${where}: url step not refused: ${step('url')?.reason}`);
      } else if (hooks.length !== 1) {
        (hooks.length > 1 ? unintended : mismatches).push(
          `${where}: ${hooks.length} URL requests; step ${step('url')?.status} ${step('url')?.reason}`,
        );
      } else {
        const raw = hooks[0]!.url;
        const [path, query = ''] = raw.split(/\?(.*)/s) as [string, string?];
        const segments = path.split('/');
        const params = [...new URLSearchParams(query)];
        const ok =
          segments.length === 4 &&
          decodeURIComponent(segments[3]!) === xw &&
          params.length === 1 &&
          params[0]![0] === 'q' &&
          params[0]![1] === xw &&
          !raw.includes('#');
        if (!ok) unintended.push(`${where}: URL arrived as ${raw.slice(0, 200)}`);
      }

      // header: one request with X-Hostile exactly the value, and no header the value could have added.
      const hdr = requests.filter((r) => r.url === `/header/${caseId}`);
      if (sinks.header === 'refused') {
        const sent = hdr[0]?.headers['x-hostile'];
        // A value sent with characters stripped (C0 controls, DEL, above U+00FF) would be counted as altered.
        if (hdr.length === 1 && sent === axiosStripped(x) && !/[\r\n\0]/.test(x))
          altered.push(`${where}: ${JSON.stringify(x)} sent as ${JSON.stringify(sent)}`);
        else {
          if (hdr.length > 0) unintended.push(`${where}: header request sent with ${JSON.stringify(sent)}`);
          if (step('header')?.status !== 'failed') mismatches.push(`${where}: header step ${step('header')?.status}`);
        }
      } else if (hdr.length !== 1) {
        mismatches.push(`${where}: ${hdr.length} header requests; step ${step('header')?.status} ${step('header')?.reason}`);
      } else {
        const names = hdr[0]!.rawHeaders.filter((_, k) => k % 2 === 0).map((h) => h.toLowerCase());
        if (hdr[0]!.headers['x-hostile'] !== x || names.some((n) => n.startsWith('x-') && n !== 'x-hostile'))
          unintended.push(`${where}: header arrived as ${JSON.stringify(hdr[0]!.headers).slice(0, 200)}`);
      }

      // promql: the query keeps the value inside its string literal, as the matcher's whole value.
      const queries = prom.queries().filter((q) => q.includes(`case="${caseId}"`));
      if (sinks.promql === 'refused') {
        if (queries.length > 0) unintended.push(`${where}: query sent: ${queries[0]!.slice(0, 200)}`);
        if (step('promql')?.status !== 'failed' || !/labels\.x/.test(step('promql')?.expect?.reason ?? ''))
          mismatches.push(`${where}: promql step ${step('promql')?.status} ${step('promql')?.expect?.reason}`);
      } else if (queries.length === 0) {
        mismatches.push(`${where}: no query reached Prometheus; step ${step('promql')?.status} ${step('promql')?.reason}`);
      } else {
        for (const q of queries) {
          const { literals } = promqlShape(q);
          let values: string[] = [];
          try {
            values = literals.map(goUnquote);
          } catch (err) {
            unintended.push(`${where}: ${(err as Error).message} in ${q.slice(0, 200)}`);
          }
          if (JSON.stringify(values) !== JSON.stringify([caseId, xw]))
            unintended.push(`${where}: query matchers ${JSON.stringify(values).slice(0, 200)} from ${q.slice(0, 200)}`);
        }
      }

      // pidfile: refused, or read inside pids/ only.
      const pid = step('pidfile');
      if (sinks.pidFile === 'refused' && !refusedBeforeRunning('pidfile'))
        mismatches.push(`${where}: pidfile step not refused: ${pid?.status} ${pid?.reason}`);
      if (sinks.pidFile === 'not-signalled' && (pid?.status !== 'failed' || refusedBeforeRunning('pidfile')))
        mismatches.push(`${where}: pidfile step ${pid?.status} ${pid?.reason} ${pid?.result?.output}`);
      if (sinks.pidFile === 'signalled' && pid?.status !== 'passed')
        mismatches.push(`${where}: pidfile step ${pid?.status} ${pid?.reason} ${pid?.result?.output}`);
    }

    // The decoys: the one the control case names was signalled (the action works), the one one `../` away was not.
    const control = accepted.find((a) => a.c.expect.sinks?.pidFile === 'signalled');
    expect(control, 'the corpus has a positive control').toBeDefined();
    await waitFor('the control decoy to be signalled', () => (legit.exited() ? true : undefined), 5000);
    if (victim.exited()) unintended.push('the decoy behind ../victim.pid was signalled');
    const pwnedFiles = readdirSync(pwned);
    if (pwnedFiles.length > 0) unintended.push(`a shell ran: ${pwnedFiles.join(', ')} created in ${pwned}`);

    const line =
      `hostile inputs: tried ${corpus.length}, rejected (4xx) ${rejected}, handled safely (202: escaped, refused or not run) ${escaped}, unsafe (executed unintended) ${unintended.length}` +
      (altered.length > 0 ? ` (${altered.length} header values sent altered)` : '');
    console.log(line);
    expect(unintended).toEqual([]);
    expect(mismatches).toEqual([]);
    expect(rejected + escaped).toBe(corpus.length);
  });

  // The header sink refuses anything an HTTP client would send altered (controls, DEL, above U+00FF), so the value
  // that reaches the target is always the label's value or nothing.
  it('header sink: a label value axios would alter is refused, never sent altered', () => {
    expect(altered).toEqual([]);
  });
});
