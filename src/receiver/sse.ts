import type { Request, Response } from 'express';

export interface ChangeSource {
  /** A value that changes whenever what is watched changes; `data` is sent with each change. */
  poll(): Promise<{ version: string; data?: unknown; done?: boolean } | undefined>;
}

/**
 * Server-sent events for live views: looks at `source` every `intervalMs` and sends `event: change` (with the data)
 * when its version moved, `event: end` when it is done, a comment every 15 s so proxies keep the stream open.
 * Polling Redis once a second per viewer is cheap and needs nothing from the workers.
 */
export function streamChanges(req: Request, res: Response, source: ChangeSource, intervalMs = 1000): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write('retry: 2000\n\n');
  let last: string | undefined;
  let closed = false;
  let beat = Date.now();
  const tick = async () => {
    if (closed) return;
    try {
      const seen = await source.poll();
      if (closed) return;
      if (seen !== undefined && seen.version !== last) {
        last = seen.version;
        res.write(`event: change\ndata: ${JSON.stringify(seen.data ?? { version: seen.version })}\n\n`);
        beat = Date.now();
      }
      if (seen?.done) {
        res.write('event: end\ndata: {}\n\n');
        res.end();
        closed = true;
        return;
      }
      if (Date.now() - beat > 15_000) {
        res.write(': keep-alive\n\n');
        beat = Date.now();
      }
    } catch {
      /* Redis away for a moment: try again at the next tick */
    }
    timer = setTimeout(() => void tick(), intervalMs);
  };
  let timer = setTimeout(() => void tick(), 0);
  req.on('close', () => {
    closed = true;
    clearTimeout(timer);
  });
}
