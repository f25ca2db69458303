import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DockerfileParser, type Copy, type Instruction } from 'dockerfile-ast';

/**
 * No Docker engine runs here, so the image's properties are checked on the parsed Dockerfile
 * (dockerfile-ast, the parser behind the Dockerfile language server).
 */
const root = new URL('../../../', import.meta.url);
const text = readFileSync(new URL('Dockerfile', root), 'utf8');
const dockerfile = DockerfileParser.parse(text);
const instructions = dockerfile.getInstructions();

interface Stage {
  name: string | null;
  image: string | null;
  body: Instruction[];
}

/** Instructions grouped by build stage (each FROM starts one). */
const stages: Stage[] = [];
for (const instruction of instructions) {
  if (instruction.getKeyword() === 'FROM') {
    const from = dockerfile.getFROMs().find((f) => f.getRange().start.line === instruction.getRange().start.line)!;
    stages.push({ name: from.getBuildStage(), image: from.getImage(), body: [] });
  } else {
    stages.at(-1)?.body.push(instruction);
  }
}
const final = stages.at(-1)!;
const of = (stage: Stage, keyword: string) => stage.body.filter((i) => i.getKeyword() === keyword);
const args = (i: Instruction) => i.getArgumentsContent() ?? '';
/** Exec-form (JSON) arguments, so signals go to the process and no shell parses them. */
const json = (i: Instruction) => JSON.parse(args(i)) as string[];
/** A COPY as `--from=stage src dest` (the parser keeps flags apart from the arguments). */
const copy = (i: Instruction) => {
  const from = (i as Copy).getFromFlag()?.getValue();
  return `${from ? `--from=${from} ` : ''}${args(i)}`;
};

describe('Dockerfile', () => {
  it('parses without problems', () => {
    expect(instructions.length).toBeGreaterThan(10);
    expect(stages.length).toBeGreaterThanOrEqual(2);
  });

  it('is multi-stage: the build stage runs npm ci and the build', () => {
    const build = stages.find((s) => s.name === 'build');
    expect(build).toBeDefined();
    const runs = of(build!, 'RUN').map(args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
  });

  it('the runtime has production dependencies only: node_modules come from an npm ci --omit=dev stage', () => {
    const copies = of(final, 'COPY').map(copy);
    const modules = copies.filter((c) => /node_modules/.test(c));
    expect(modules).toHaveLength(1);
    const fromStage = /--from=(\S+)/.exec(modules[0]!)?.[1];
    const source = stages.find((s) => s.name === fromStage);
    expect(source, `node_modules copied from stage ${fromStage}`).toBeDefined();
    expect(of(source!, 'RUN').map(args).join('\n')).toMatch(/npm ci[^\n]*--omit=dev/);
    // From the build stage only the compiled output is taken.
    expect(copies.filter((c) => c.includes('--from=build'))).toEqual(['--from=build /app/dist ./dist']);
    expect(of(final, 'RUN').map(args).join('\n')).not.toMatch(/npm (ci|install)/);
  });

  it('every stage starts from a pinned base image, not latest', () => {
    const initial = dockerfile.getInitialARGs().map(args).join('\n');
    expect(initial).toMatch(/NODE_IMAGE=node:20[-\w.]*-slim/);
    for (const stage of stages) expect(stage.image).not.toMatch(/:latest$/);
  });

  it('runs as the unprivileged node user, and nothing runs as root after switching', () => {
    const users = of(final, 'USER');
    expect(users.map(args)).toEqual(['node']);
    const after = final.body.slice(final.body.indexOf(users[0]!));
    expect(after.filter((i) => i.getKeyword() === 'RUN')).toEqual([]);
  });

  it('runs node under an init (tini) in exec form, with serve as the default command', () => {
    const entrypoint = of(final, 'ENTRYPOINT');
    expect(entrypoint).toHaveLength(1);
    expect(json(entrypoint[0]!)).toEqual(['/usr/bin/tini', '--', 'node', 'dist/cli.js']);
    expect(of(final, 'RUN').map(args).join('\n')).toMatch(/apt-get install[^\n]*\btini\b/);
    expect(of(final, 'CMD').map(json)).toEqual([['serve']]);
  });

  it('has a HEALTHCHECK on /healthz and exposes 9095', () => {
    const healthcheck = of(final, 'HEALTHCHECK');
    expect(healthcheck).toHaveLength(1);
    expect(args(healthcheck[0]!)).toMatch(/CMD \[/);
    expect(args(healthcheck[0]!)).toContain('/healthz');
    expect(of(final, 'EXPOSE').map(args)).toEqual(['9095']);
  });

  it('the HEALTHCHECK command passes for the exporter (same image, EXPORTER_PORT) and fails when nothing answers', async () => {
    const command = JSON.parse(/CMD (\[.*\])\s*$/s.exec(args(of(final, 'HEALTHCHECK')[0]!))![1]!) as string[];
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    const { loadExporterConfig } = await import('../../../src/config.js');
    const { startExporter } = await import('../../../src/exporter/exporter.js');
    const { silentLogger } = await import('../../../src/log.js');
    const { freePort } = await import('../../helpers/ports.js');
    const exporter = await startExporter(
      loadExporterConfig({ SUPERVISOR_IPC_PATH: '/nonexistent/s.sock', EXPORTER_HOST: '127.0.0.1', EXPORTER_PORT: '0' }),
      silentLogger,
    );
    const unused = String(await freePort());
    const run = (env: Record<string, string>) =>
      new Promise<number | null>((resolve) => {
        // spawnSync would block the event loop that serves the exporter: run it asynchronously.
        const child = spawn(process.execPath, command.slice(1), { env: { ...process.env, ...env }, stdio: 'ignore' });
        child.on('exit', (code) => resolve(code));
      });
    try {
      expect(await run({ PORT: unused, EXPORTER_PORT: String(exporter.port) })).toBe(0);
    } finally {
      await exporter.stop();
    }
    expect(await run({ PORT: unused, EXPORTER_PORT: unused })).toBe(1);
  });

  it("sets Node's memory flags once for every process (serve's receivers inherit them), as the systemd unit, npm start and the bench do", () => {
    const flags = '--max-semi-space-size=2 --v8-pool-size=1'; // docs/benchmark.md, "V8's worker thread pool"
    expect(of(final, 'ENV').map(args).join('\n')).toContain(`NODE_OPTIONS="${flags}"`);
    const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
    for (const unit of ['deploy/systemd/remediator-worker.service', 'deploy/systemd/remediator-exporter@.service'])
      expect(read(unit)).toContain(`Environment="NODE_OPTIONS=${flags}"`);
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`node --enable-source-maps ${flags} dist/cli.js`);
    expect(read('bench/deployment.ts')).toContain(`NODE_FLAGS = '${flags}'`);
  });

  it('ships the rules, and .dockerignore keeps secrets, VCS and local builds out of the context', () => {
    expect(of(final, 'COPY').map(args)).toContain('rules ./rules');
    const ignored = readFileSync(new URL('.dockerignore', root), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const entry of ['.git', 'node_modules', 'dist', '.env', 'test', 'coverage']) expect(ignored).toContain(entry);
    // Everything the build copies must not be ignored.
    for (const needed of ['src', 'rules', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'])
      expect(ignored).not.toContain(needed);
  });
});
