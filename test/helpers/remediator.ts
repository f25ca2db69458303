// Moved to scripts/lib/remediator.ts (the demo starts the same stack, and must not import test/); tests import it here.
export * from '../../scripts/lib/remediator.js';
