// Moved to scripts/lib/wait.ts (the demo starts the same stack, and must not import test/); tests import it here.
export * from '../../scripts/lib/wait.js';
