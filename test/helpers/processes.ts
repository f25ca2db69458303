// Moved to scripts/lib/processes.ts (the demo starts the same stack, and must not import test/); tests import it here.
export * from '../../scripts/lib/processes.js';
