// Moved to scripts/lib/sink.ts (the bench uses the same sink, and must not import test/); tests import it here.
export * from '../../scripts/lib/sink.js';
