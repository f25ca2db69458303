import { fileURLToPath } from 'node:url';

/**
 * The node arguments that run one of the simulator's scripts (`supervisor` or `relay`) as its own process:
 * through tsx's loader when running from the .ts sources, plain node when compiled.
 */
export function scriptArgs(script: 'supervisor' | 'relay'): string[] {
  const fromSource = import.meta.url.endsWith('.ts');
  const file = fileURLToPath(new URL(`./${script}.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  return fromSource ? ['--import', import.meta.resolve('tsx'), file] : [file];
}
