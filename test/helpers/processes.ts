// Moved to scripts/lib/processes.ts (the demo starts the same stack, and must not import test/); tests import it here.
export * from '../../scripts/lib/processes.js';
// The one waitFor (scripts/lib/wait.ts), also from here for test/sim/, which still imports it from this module.
export { waitFor } from '../../scripts/lib/wait.js';
