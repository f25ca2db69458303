/**
 * The control loop's mailbox: one message at a time, in order, like rust-supervisor's `run_control_loop`
 * (runtime/control_loop.rs:3049) over its mpsc. `state` and every command are messages here, and so are child
 * exits; `hello` never is (the IPC task answers it), which is why a stalled loop leaves `hello` answering
 * while `state` and commands hang.
 *
 * A stall stands for the loop's task not being polled: its worker thread is held by a task that never yields
 * (a `block_forever` child), or a fault injected through the admin channel. `slowMs` delays every message, a
 * loaded runtime that still turns. A hog (a child task that holds a worker for long stretches between its awaits,
 * `./tasks.ts`) makes every wake-up of the loop come late: each message reaches the queue `lateMs` after it was
 * sent, for as long as some hog runs.
 */
export class ControlLoop {
  private readonly queue: (() => Promise<void>)[] = [];
  private readonly stalls = new Set<string>();
  private running = false;
  slowMs = 0;
  private wake: (() => void) | undefined;
  private readonly hogs = new Map<object, number>();

  /** Run `fn` as one control-loop message; resolves with its result once the loop got to it. */
  request<T>(fn: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const enqueue = () => {
        this.queue.push(async () => {
          try {
            resolve(await fn());
          } catch (err) {
            reject(err);
          }
        });
        void this.drain();
      };
      const late = this.lateMs;
      if (late > 0) setTimeout(enqueue, late);
      else enqueue();
    });
  }

  /** A task holds the runtime (`ms` > 0) or lets it go (0): while any does, every message comes `lateMs` late. */
  hog(task: object, ms: number): void {
    if (ms > 0) this.hogs.set(task, ms);
    else this.hogs.delete(task);
  }

  get lateMs(): number {
    return Math.max(0, ...this.hogs.values());
  }

  /** Post a message nobody waits for (a child exit, a delayed spawn). */
  post(fn: () => void | Promise<void>): void {
    void this.request(fn).catch((err: unknown) => process.emitWarning(`control loop message failed: ${String(err)}`));
  }

  stall(reason: string): void {
    this.stalls.add(reason);
  }

  unstall(reason: string): void {
    this.stalls.delete(reason);
    this.wake?.();
  }

  get stalled(): boolean {
    return this.stalls.size > 0;
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        while (this.stalls.size > 0) await new Promise<void>((resolve) => (this.wake = resolve));
        const next = this.queue.shift();
        if (next === undefined) return;
        if (this.slowMs > 0) await new Promise((resolve) => setTimeout(resolve, this.slowMs));
        await next();
      }
    } finally {
      this.running = false;
    }
  }
}
