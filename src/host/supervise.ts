/**
 * One call in flight from the pool's side: its promise's settling and pool slot (InFlight), and
 * its deadline, abort signal and grace period (supervise).
 */
import type { CallOptions } from "./python.js";
import { AbortError, CallTimeoutError } from "./errors.js";
import type { Pending, Worker } from "./worker.js";

/** For a call without deadline or signal: nothing to watch (streams always need `stop`). */
const UNSUPERVISED = { stop: () => undefined, finished: () => undefined };

/**
 * A call in flight: settles its promise once, then gives its pool slot back and ends its
 * supervision. The worker settles it with its answer; the supervisor may give up on it first.
 */
export class InFlight implements Pending {
  // Assigned in the constructor, not as field initializers: V8 runs those as one more function
  // per object, and there is one object per call.
  ctl: { stop: () => void; finished: () => void };
  private settled: boolean;
  private readonly load: number[];
  private readonly slot: number;
  private readonly ok: (value: never) => void;
  private readonly fail: (err: Error) => void;

  constructor(
    load: number[],
    slot: number,
    ok: (value: never) => void,
    fail: (err: Error) => void,
  ) {
    this.ctl = UNSUPERVISED;
    this.settled = false;
    this.load = load;
    this.slot = slot;
    this.ok = ok;
    this.fail = fail;
  }

  resolve(value: unknown): void {
    this.ctl.finished();
    if (this.settle()) this.ok(value as never);
  }

  reject(err: Error): void {
    this.ctl.finished();
    if (this.settle()) this.fail(err);
  }

  /** The deadline passed or the signal fired: rejects now; the worker's answer, if any, comes later. */
  giveUp(err: Error): void {
    if (this.settle()) this.fail(err);
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.load[this.slot]--;
    return true;
  }
}

/**
 * The deadline, abort signal and grace period of one call or stream on worker `w`. On a
 * deadline or abort, `fail` gets the error at once and the call is stopped (cancel + SIGINT);
 * if the worker has not answered within `graceMs`, it is killed (and replaced on next use).
 * Deadline and grace period count from when the call starts (see Worker.whenStarted).
 * `finished()` is called when the worker's final answer arrives.
 */
export function supervise(
  w: Worker,
  id: number,
  target: string,
  opts: CallOptions,
  graceMs: number,
  fail: (err: Error) => void,
) {
  let timer: NodeJS.Timeout | undefined;
  let grace: NodeJS.Timeout | undefined;
  /** Set once the deadline no longer applies (given up or answered), and once answered. */
  let unwatched = false;
  let answered = false;
  const onAbort = () =>
    giveUp(new AbortError(`call to ${target} was aborted`, { cause: opts.signal?.reason }));
  const cleanup = () => {
    unwatched = true;
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  };
  const stop = () => {
    cleanup();
    w.cancel(id);
    // A call still queued behind others is only marked cancelled: its grace period, like its
    // deadline, starts when it would have started (Worker.whenStarted).
    w.whenStarted(id, () => {
      if (!answered) grace ??= setTimeout(() => w.kill(), graceMs);
    });
  };
  const giveUp = (err: Error) => {
    stop();
    fail(err);
  };
  if (opts.timeoutMs !== undefined)
    w.whenStarted(id, () => {
      if (unwatched) return;
      timer = setTimeout(
        () =>
          giveUp(
            new CallTimeoutError(
              `call to ${target} did not finish within ${opts.timeoutMs} ms`,
              opts.timeoutMs!,
            ),
          ),
        opts.timeoutMs,
      );
    });
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  return {
    stop,
    finished: () => {
      answered = true;
      cleanup();
      clearTimeout(grace);
    },
  };
}
