import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec, ExecSpec } from '../../../src/actions/exec.js';
import type { RunningProcess } from '../../../src/actions/process-guard.js';
import { ActionError, capOutput, OUTPUT_LIMIT } from '../../../src/actions/types.js';
import { createRender, TemplateError } from '../../../src/template.js';
import { waitFor } from '../../helpers/wait.js';
import { actionContext, describeActionContract } from './contract.js';

const node = process.execPath;
/** A node program as argv: `node -e <code> [args…]`. */
const js = (code: string, ...args: string[]): ExecSpec => ({ command: [node, '-e', code, ...args] });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remediator-exec-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The contract's slow command: marks its start, and its own completion 10 s later. */
let slowMarks = 0;
let slowRun = { started: '', done: '' };

describeActionContract(exec, {
  valid: { command: ['systemctl', 'restart', 'supervisor'], timeout: '30s', okExitCodes: [0, 3] },
  slow: () => {
    slowRun = { started: join(dir, `slow-${++slowMarks}.started`), done: join(dir, `slow-${slowMarks}.done`) };
    const code = `const fs = require('node:fs'); fs.writeFileSync(process.argv[1], String(process.pid));
      setTimeout(() => fs.writeFileSync(process.argv[2], 'done'), 10_000);`;
    return js(code, slowRun.started, slowRun.done);
  },
  started: () => waitForFile(slowRun.started).then(() => undefined),
  finished: () => existsSync(slowRun.done),
  bigOutput: () => js(`process.stdout.write('x'.repeat(${OUTPUT_LIMIT * 3}))`),
  failing: (secret) => ({ command: ['/nonexistent/remediator-test-program'], env: { API_TOKEN: secret } }),
});

describe('actions/exec', () => {
  it('passes shell metacharacters through literally, one argv element each', async () => {
    const args = [
      '; rm -rf /tmp/x',
      '$(id)',
      '`id`',
      '| cat /etc/passwd',
      '&& echo pwned',
      '\'quoted\' "double"',
      '*',
      '~',
      '>out',
      '\\n',
    ];
    const result = await exec.run(js('console.log(JSON.stringify(process.argv.slice(1)))', ...args), actionContext());
    expect(result.status).toBe('succeeded');
    expect(JSON.parse(result.output!)).toEqual(args);
  });

  it('exit code 0 succeeds and is recorded', async () => {
    await expect(exec.run(js('process.exit(0)'), actionContext())).resolves.toMatchObject({ status: 'succeeded', exitCode: 0 });
  });

  it('another exit code fails, unless listed in okExitCodes', async () => {
    await expect(exec.run(js('process.exit(3)'), actionContext())).resolves.toMatchObject({ status: 'failed', exitCode: 3 });
    await expect(exec.run({ ...js('process.exit(3)'), okExitCodes: [0, 3] }, actionContext())).resolves.toMatchObject({
      status: 'succeeded',
      exitCode: 3,
    });
  });

  it('captures stdout and stderr interleaved in order', async () => {
    const code = `
      const out = (s, t) => new Promise((r) => s.write(t, r));
      (async () => { await out(process.stdout, 'one\\n'); await new Promise((r) => setTimeout(r, 20));
        await out(process.stderr, 'two\\n'); await new Promise((r) => setTimeout(r, 20));
        await out(process.stdout, 'three\\n'); })();`;
    const result = await exec.run(js(code), actionContext());
    expect(result.output).toBe('one\ntwo\nthree\n');
  });

  it('caps output exactly as capOutput does, in bounded memory', async () => {
    const n = OUTPUT_LIMIT + 1234;
    const result = await exec.run(js(`process.stdout.write('ab'.repeat(${n / 2}))`), actionContext());
    expect(result.output).toBe(capOutput('ab'.repeat(n / 2)));
  });

  it('keeps a multi-byte character whole when it arrives split across chunks', async () => {
    // "€" is e2 82 ac: write its first byte, wait, then the rest.
    const code = `process.stdout.write(Buffer.from([0xe2]), () => setTimeout(() => process.stdout.write(Buffer.from([0x82, 0xac, 0x0a])), 50))`;
    const result = await exec.run(js(code), actionContext());
    expect(result.output).toBe('€\n');
  });

  // Issue 9: an allow-list (PATH, HOME, locale… and EXEC_ENV_ALLOW's names), plus spec.env; nothing else of remediator's.
  it('inherits only the allow-listed environment (and EXEC_ENV_ALLOW), and adds spec.env', async () => {
    process.env.REMEDIATOR_EXEC_INHERITED = 'inherited';
    process.env.SOME_CLOUD_SECRET = 'secret';
    try {
      const print = js(
        'console.log([process.env.REMEDIATOR_EXEC_INHERITED, process.env.SOME_CLOUD_SECRET, process.env.EXTRA, !!process.env.PATH].join(" "))',
      );
      expect((await exec.run({ ...print, env: { EXTRA: 'extra' } }, actionContext())).output).toBe('  extra true\n');
      process.env.EXEC_ENV_ALLOW = ' REMEDIATOR_EXEC_INHERITED ,OTHER';
      expect((await exec.run({ ...print, env: { EXTRA: 'extra' } }, actionContext())).output).toBe('inherited  extra true\n');
    } finally {
      delete process.env.REMEDIATOR_EXEC_INHERITED;
      delete process.env.SOME_CLOUD_SECRET;
      delete process.env.EXEC_ENV_ALLOW;
    }
  });

  it('runs in cwd', async () => {
    const result = await exec.run({ ...js('console.log(process.cwd())'), cwd: dir }, actionContext());
    expect(result.output?.trim()).toBe(dir);
  });

  it('a missing program is a non-retryable ActionError naming it', async () => {
    const err = await exec.run({ command: ['remediator-no-such-program', '--flag'] }, actionContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ActionError);
    expect((err as ActionError).retryable).toBe(false);
    expect((err as ActionError).message).toContain('"remediator-no-such-program" not found');
  });

  it('a missing working directory is named as such', async () => {
    const err = await exec.run({ ...js('1'), cwd: join(dir, 'nope') }, actionContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ActionError);
    expect((err as ActionError).message).toContain('working directory');
  });

  it('a program that is not executable is a non-retryable ActionError', async () => {
    const file = join(dir, 'not-executable.sh');
    await writeFile(file, '#!/bin/sh\necho hi\n', { mode: 0o644 });
    const err = await exec.run({ command: [file] }, actionContext()).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ActionError', retryable: false });
    expect((err as Error).message).toContain('not executable');
  });

  it('timeout: SIGTERM, a failed result with the output so far', async () => {
    // The timeout, not sleep's own end, finished it: killed by SIGTERM, never an exit code.
    const result = await exec.run({ command: ['sh', '-c', 'echo started; exec sleep 10'], timeout: '1s' }, actionContext());
    expect(result.status).toBe('failed');
    expect(result.exitCode).toBeUndefined();
    expect(result.detail).toMatchObject({ timedOut: true, signal: 'SIGTERM' });
    expect(result.output).toBe('started\n[timed out after 1s; killed with SIGTERM]');
  });

  it('timeout: SIGKILL 2 s after SIGTERM when the process ignores it', async () => {
    const code =
      'process.on("SIGTERM", () => console.log("ignoring SIGTERM")); console.log("ready"); setInterval(() => {}, 1000)';
    const t0 = performance.now();
    // 1 s: node must be up and have its handler installed before the SIGTERM arrives.
    const result = await exec.run({ ...js(code), timeout: '1s' }, actionContext());
    // A lower bound only (the 2 s grace is honoured); load can only make it later. It never ends by itself.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(2950);
    expect(result.detail).toMatchObject({ timedOut: true, signal: 'SIGKILL' });
    expect(result.output).toContain('ignoring SIGTERM');
  });

  it('abort kills the child (its whole process group)', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    // The child starts a grandchild in the same group and records its pid.
    const code = `
      const { spawn } = require('node:child_process');
      const g = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { stdio: 'ignore' });
      require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(g.pid));
      setTimeout(() => {}, 10000);`;
    const ac = new AbortController();
    const running = exec.run(js(code), actionContext(ac.signal)).catch((e: unknown) => e);
    const grandchild = await waitForFile(pidFile);
    ac.abort();
    expect(await running).toBeInstanceOf(ActionError);
    await waitFor(`grandchild ${grandchild} to be gone`, () => !alive(grandchild));
  });

  it('a launcher killed while its command runs: the step ends only once the command is gone (stopped by the worker)', async () => {
    // The command ignores SIGTERM: only a SIGKILL from the worker itself can end it, the launcher being gone.
    const code = 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)';
    let tracked: RunningProcess | undefined;
    const ctx = { ...actionContext(), track: async (p: RunningProcess) => void (tracked = p) };
    const result = exec.run(js(code), ctx);
    const running = await waitFor('the command in the checkpoint', () => tracked);
    process.kill(running.guardPid!, 'SIGKILL');
    const ended = await result;
    expect(alive(running.pid), 'the command is gone when its step ends').toBe(false);
    expect(ended.status).toBe('failed');
    expect(ended.output).toContain('[the process launcher ended unexpectedly]');
  });

  it('a process killed by a signal fails and says so', async () => {
    const result = await exec.run(js('process.kill(process.pid, "SIGKILL")'), actionContext());
    expect(result).toMatchObject({ status: 'failed', detail: { signal: 'SIGKILL' } });
    expect(result.output).toContain('[killed by SIGKILL]');
  });

  it('returns when the process exits even if a daemon it started keeps the pipes open', async () => {
    const code = `const d = require('node:child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)'], { stdio: 'inherit', detached: true }); d.unref(); console.log('daemon started', d.pid)`;
    const result = await exec.run(js(code), actionContext());
    expect(result).toMatchObject({ status: 'succeeded', exitCode: 0 });
    const daemon = Number(/daemon started (\d+)/.exec(result.output ?? '')?.[1]);
    // Returned while the daemon (holding the pipes) still lives: the exit, not the pipes' close, ended it.
    expect(alive(daemon), 'the daemon is still running when exec returns').toBe(true);
    process.kill(daemon, 'SIGKILL');
  });

  it('describe() quotes arguments that need it, on one line', () => {
    expect(exec.describe({ command: ['systemctl', 'restart', 'supervisor'], timeout: '30s' })).toBe(
      'systemctl restart supervisor (timeout 30s)',
    );
    expect(exec.describe({ command: ['sh', '-c', 'echo a\necho b'] })).toBe('sh -c "echo a\\necho b"');
  });

  it('render() sends every argv element through the argv sink', () => {
    const seen: [string, string][] = [];
    const rendered = exec.render({ command: ['kill', '{{ labels.pid }}'] }, (t, sink) => (seen.push([t, sink]), t.toUpperCase()));
    expect(seen).toEqual([
      ['kill', 'argv'],
      ['{{ labels.pid }}', 'argv'],
    ]);
    expect(rendered.command).toEqual(['KILL', '{{ LABELS.PID }}']);
  });

  it('render() with the real renderer: list vars splice, alert labels stay one safe argument', () => {
    const render = createRender({
      labels: { pid: '1234', evil: '--force' },
      annotations: {},
      vars: { restart: ['systemctl', 'restart', 'relay'] },
      env: {},
    });
    expect(exec.render({ command: ['{{ vars.restart }}', '{{ labels.pid }}; rm -rf /'] }, render).command).toEqual([
      'systemctl',
      'restart',
      'relay',
      '1234; rm -rf /',
    ]);
    expect(() => exec.render({ command: ['kill', '{{ labels.evil }}'] }, render)).toThrow(TemplateError);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForFile(path: string): Promise<number> {
  return waitFor(`${path} to hold a pid`, async () => Number(await readFile(path, 'utf8').catch(() => '')) || undefined);
}
