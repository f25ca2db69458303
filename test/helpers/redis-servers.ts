// Moved to scripts/lib/redis-servers.ts (the bench starts the same servers, and must not import test/); tests import it here.
export * from '../../scripts/lib/redis-servers.js';
