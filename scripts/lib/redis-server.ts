/** Debian's redis-server, as the demo, the bench and the tests start their own. */
export const REDIS_SERVER = '/usr/bin/redis-server';

/**
 * Arguments of a throwaway redis-server: loopback only, nothing kept on disk (no RDB snapshot, no AOF), its
 * working directory `dir` when given (where a replica or cluster node writes its files).
 */
export function ephemeralRedisArgs(port: number, dir?: string): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    ...(dir === undefined ? [] : ['--dir', dir]),
  ];
}
