import type { ServerResponse } from 'node:http';

/**
 * Answers written on plain node:http (the webhook's fast path, a worker's probes) exactly as Express writes them:
 * `res.json` (JSON.stringify, `application/json; charset=utf-8`) and `res.type('text/plain').send`.
 */
export interface PlainAnswer {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

export const jsonAnswer = (status: number, body: unknown): PlainAnswer => ({
  status,
  contentType: 'application/json; charset=utf-8',
  body: JSON.stringify(body),
});

export const textAnswer = (status: number, body: string): PlainAnswer => ({
  status,
  contentType: 'text/plain; charset=utf-8',
  body,
});

/** Writes the answer: its headers, Content-Type and Content-Length, and the body unless the request was a HEAD. */
export function writeAnswer(res: ServerResponse, answer: PlainAnswer, head = false): void {
  res.writeHead(answer.status, {
    ...answer.headers,
    'Content-Type': answer.contentType,
    'Content-Length': Buffer.byteLength(answer.body),
  });
  res.end(head ? undefined : answer.body);
}
