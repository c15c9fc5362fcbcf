/**
 * One Python worker process (python/host_worker.py, started by python/host_boot.py). The
 * protocol runs on fds 3 (to Python) and 4 (from Python), with long byte values in two arena
 * files on fds 5 and 6 (arena.ts) when they could be made; the worker's stdout and stderr go to
 * the host's streams or an `onOutput` callback, and the last few KiB of stderr are kept for
 * crash reports. The calls of one tick are written together (pipelined) and answered by id.
 * When the process exits, every unanswered call is rejected with WorkerCrashedError at once.
 */
import * as fs from "node:fs";
import type { Readable, Writable } from "node:stream";
import { ArenaReader, ArenaWriter } from "./arena.js";
import { CallTable } from "./calls.js";
import { FrameReader } from "./decode.js";
import { FrameWriter } from "./encode.js";
import { PythonError, WorkerCrashedError, type PythonErrorInfo } from "./errors.js";
import { hostAddon } from "../util/addon.js";
import { launch, type Launched } from "./launch.js";
import type { WorkerProcess } from "./process.js";
import { describeJsError, runHostCall, type HostFunctions } from "./host-calls.js";
import type { ForkServer } from "./fork-server.js";
import { KIND, TAG } from "./protocol.js";

export type OutputHandler = (output: {
  stream: "stdout" | "stderr";
  text: string;
  worker: number;
}) => void;

export interface WorkerOptions {
  python: string;
  index: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  path: string[];
  preload: string[];
  memoryLimitMb?: number;
  /** Coroutine calls a worker runs at once. */
  concurrency?: number;
  /** Microseconds the worker polls for the next call, and this process for a quick reply, before sleeping (0: never). */
  spinUs?: number;
  onOutput?: OutputHandler;
  /** Functions Python may call (`pyport_host.call(name, …)`); see StartOptions.hostFunctions. */
  hostFunctions?: HostFunctions;
  /** The worker processes' nice value (see StartOptions.nice). */
  nice?: number;
  /** Replies one by one, calls in order (see StartOptions.replyEach). */
  replyEach?: boolean;
  /** Forks the worker when it serves these options and is ready (see StartOptions.forkServer). */
  forkServer?: ForkServer;
}

export type { HostFunctions } from "./host-calls.js";

/** An unanswered call. Streams get `item` for each value, then `resolve(undefined)` when done. */
export interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  item?(value: unknown): void;
}

const STDERR_TAIL = 4096;
/** The smallest polling budget (µs): about one round trip's CPU work. */
const MIN_POLL_US = 30;

let warmed = false;
/**
 * Encodes a typical call and decodes a typical reply, once per process: run while the first
 * worker's interpreter starts, it takes V8's first-run costs (~1 ms here) off the first call.
 */
function warmCodec(): void {
  if (warmed) return;
  warmed = true;
  const w = new FrameWriter();
  w.call(KIND.toPython.call, 0, "module:function", [1, 2.5, "text", null, true, [1]], {
    key: "value",
  });
  w.take();
  const reply = Buffer.from([
    14,
    0,
    0,
    0,
    KIND.fromPython.ok,
    0,
    0,
    0,
    0,
    TAG.int,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
  new FrameReader(undefined, () => undefined).push(reply);
}

/** Calls in flight on every worker of this process: a worker polls only when all of them are its own. */
let inFlight = 0;

export class Worker {
  /** Calls in flight, by id (see nextCallId). */
  readonly pending = new CallTable<Pending>();
  private lastId = 0;
  /** No call with a lower id is in flight (see whenStarted). */
  private head = 1;
  /** With replyEach: what to run when a queued call starts, by id (see whenStarted). */
  private readonly startWaiters = new Map<number, () => void>();
  stderrTail = "";
  exited = false;
  readonly done: Promise<void>;
  /** Called once when the process is gone (after every pending call was rejected). */
  onExit?: () => void;
  private readonly proc: WorkerProcess;
  private resolveDone!: () => void;
  /** Settles when stderr and the protocol pipe have closed (see finish). */
  private outputEnded!: Promise<unknown>;
  private readonly arenaFds: [number, number] | null;
  private readonly toPython: Writable;
  private readonly fromPython: Readable;
  private readonly frames: FrameReader;
  /** Settles when the worker says it is ready (its preloads imported), or exits first. */
  private readonly ready: Promise<void>;
  private readyWaiter?: { resolve: () => void; reject: (e: Error) => void };
  /** Frames of this tick, written at its end (see post). */
  private readonly outbox: FrameWriter;
  /** Long byte values to and from Python (undefined: they go inline). */
  private readonly arenaOut: ArenaWriter | undefined;
  private readonly arenaIn: ArenaReader | undefined;
  /** The descriptor fromPython reads, for pollReplies (undefined: no polling). */
  private readonly fromFd: number | undefined;
  private pollScheduled = false;
  /** The last lone call was answered within spinUs: worth polling for the next reply. */
  private chatty = true;
  /** performance.now() when the oldest in-flight call was sent while none were. */
  private sentAt = 0;
  /** Moving average of quick lone calls' reply latency (µs): sets the polling budget. */
  private replyUs = MIN_POLL_US;
  private slab = Buffer.alloc(0);
  private slabUsed = 0;
  /** Waiting for pending to empty (drained). */
  private readonly drainWaiters: (() => void)[] = [];
  /** Why the worker was killed for sending data that breaks the protocol. */
  private brokenProtocol?: string;
  /** Why the host killed the process, for the calls it rejects. */
  private killReason?: string;

  /** Takes over a process `launch` started. */
  private constructor(
    readonly opts: WorkerOptions,
    { proc, arena }: Launched,
  ) {
    this.ready = new Promise<void>((resolve, reject) => (this.readyWaiter = { resolve, reject }));
    this.ready.catch(() => undefined); // when nobody waits for it: the exit is reported to the calls
    this.done = new Promise<void>((resolve) => (this.resolveDone = resolve));
    this.proc = proc;
    this.arenaFds = arena;
    proc.onExit = (code, signal, err) => this.finish(code, signal, err);
    this.arenaOut = arena ? new ArenaWriter(arena[0]) : undefined;
    this.outbox = new FrameWriter(this.arenaOut);
    this.arenaIn = arena ? new ArenaReader(arena[1]) : undefined;
    this.frames = new FrameReader(this.arenaIn, this.onFrame);
    // While the interpreter starts: V8's first run of the codec, and performance.now(), whose
    // first use loads perf_hooks (~0.8 ms here, which the first call would otherwise pay).
    warmCodec();
    performance.now();
    const { toPython, fromPython, stdout, stderr } = this.proc;
    this.toPython = toPython;
    this.fromPython = fromPython;
    toPython.on("error", () => undefined); // EPIPE when the worker dies: reported by the exit handler
    if (opts.spinUs && hostAddon()) this.fromFd = this.proc.fromFd;
    fromPython.on("data", (chunk: Buffer) => this.onData(chunk));
    fromPython.on("error", () => undefined);
    const forward = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
      const text = chunk.toString();
      if (stream === "stderr") this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
      if (opts.onOutput) opts.onOutput({ stream, text, worker: opts.index });
      else (stream === "stdout" ? process.stdout : process.stderr).write(chunk);
    };
    stdout.on("data", forward("stdout"));
    stderr.on("data", forward("stderr"));
    stdout.on("error", () => undefined);
    stderr.on("error", () => undefined);
    this.outputEnded = Promise.all(
      [stderr, fromPython].map((s) => new Promise<void>((r) => s.on("close", r))),
    );
  }

  /** The process is gone (or never started): every unanswered call is rejected with WorkerCrashedError. */
  private finish(code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void {
    if (this.exited) return;
    this.exited = true;
    const { opts } = this;
    // Give stderr and the protocol pipe a moment to drain, so the crash report has the last
    // words and replies written before the death settle their calls (bounded: a grandchild may
    // hold a pipe open).
    void Promise.race([this.outputEnded, new Promise((r) => setTimeout(r, 30))]).then(() => {
      const how = spawnError
        ? `could not start ${opts.python}: ${spawnError.message}`
        : this.killReason
          ? this.killReason
          : this.brokenProtocol
            ? `was stopped: it broke the host protocol (${this.brokenProtocol}; a pyport bug, please report it)`
            : signal
              ? `killed by ${signal}`
              : code === null
                ? "was lost: its exit status could not be read (for a forked worker: its fork server died)"
                : `exited with code ${code}`;
      const why = this.readyWaiter && !spawnError ? `${how} before it was ready` : how;
      const who = `Python worker ${opts.index} (pid ${this.proc.pid ?? "?"})`;
      const err = new WorkerCrashedError(
        `${who} ${why}${this.stderrTail ? `; stderr ends with:\n${this.stderrTail.trimEnd().split("\n").slice(-8).join("\n")}` : ""}`,
        code,
        signal,
        this.stderrTail,
      );
      this.readyWaiter?.reject(err);
      inFlight -= this.pending.size;
      this.startWaiters.clear();
      const calls = this.pending.takeAll();
      // With replyEach, calls run one at a time in id order and each answers before the next
      // starts: only the first one unanswered was running (unless a stream makes order unclear).
      const inOrder = opts.replyEach && calls.every((p) => !p.item);
      const queued = new WorkerCrashedError(
        `${who} ${how} before this call started, while running an earlier one`,
        code,
        signal,
        this.stderrTail,
        false,
      );
      calls.forEach((p, i) => p.reject(inOrder && i > 0 ? queued : err));
      this.drainWaiters.splice(0).forEach((wake) => wake());
      for (const stream of [this.proc.stdout, this.proc.stderr, this.fromPython, this.toPython])
        stream.destroy();
      this.arenaFds?.forEach((fd) => fs.closeSync(fd));
      this.onExit?.();
      this.resolveDone();
    });
  }

  /**
   * Starts a worker. With modules to preload, waits until the worker has imported them (a failing
   * import rejects). Otherwise it is ready to take calls once its process exists: calls sent
   * while its interpreter starts wait in its input and run as soon as it can, with no
   * handshake between start and the first call.
   */
  static async start(opts: WorkerOptions): Promise<Worker> {
    const w = new Worker(opts, launch(opts));
    if (opts.preload.length || w.proc.pid === undefined) await w.ready; // no pid: spawning failed, and the error follows
    return w;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  private onData(chunk: Buffer): void {
    if (this.pending.size === 1 && this.fromFd !== undefined) this.timeLoneReply();
    try {
      this.frames.push(chunk);
    } catch (err) {
      // A pyport bug, not the caller's: the worker cannot be trusted any more.
      this.brokenProtocol = (err as Error).message;
      this.kill();
      return;
    }
    if (this.arenaIn?.unreported && !this.exited) {
      this.post(KIND.toPython.release, 0, this.arenaIn.readTo);
      this.arenaIn.unreported = false;
    }
  }

  private readonly onFrame = (kind: number, id: number, value: unknown): void => {
    const from = KIND.fromPython;
    if (kind === from.hostCall) return this.onHostCall(id, value as [string, unknown[], object]);
    const p = this.pending.get(id);
    if (p) {
      if (kind === from.item) return p.item?.(value);
      this.forget(id);
      if (kind === from.ok) p.resolve(value);
      else if (kind === from.err) p.reject(new PythonError(value as PythonErrorInfo));
      else p.resolve(undefined); // done
    } else if (kind === from.release) {
      this.arenaOut?.readUpTo(value as number);
    } else if (id === 0 && (kind === from.ready || kind === from.err)) {
      // Ready (the value is its pid), or the import of a module to preload failed.
      const waiter = this.readyWaiter;
      this.readyWaiter = undefined;
      if (kind === from.ready) waiter?.resolve();
      else {
        waiter?.reject(new PythonError(value as PythonErrorInfo));
        this.kill();
      }
    } // else: a reply to a call whose caller gave up on it
  };

  /** Python called a host function: host-calls.ts runs it and answers through the outbox. */
  private onHostCall(id: number, call: [string, unknown[], object]): void {
    runHostCall(this.opts.hostFunctions ?? {}, call, (kind, value) => {
      if (this.exited) return;
      try {
        this.outbox.frame(kind, id, value);
      } catch (err) {
        // A value Python cannot take: the call fails with the TypeError, in Python.
        this.outbox.frame(KIND.toPython.hostErr, id, describeJsError(err));
      }
      this.posted();
    });
  }

  /** The id for this worker's next call: its own numbering, one after the other (the worker relies on ids growing). */
  nextCallId(): number {
    return ++this.lastId;
  }

  /** Sends a call (a stream when `credit` is given: it may send that many items); its reply settles `pending`. */
  send(
    id: number,
    target: string,
    args: unknown[],
    kwargs: Record<string, unknown>,
    pending: Pending,
    credit?: number,
  ): void {
    if (this.exited)
      throw new WorkerCrashedError(
        `Python worker ${this.opts.index} has exited`,
        null,
        null,
        this.stderrTail,
      );
    const to = KIND.toPython;
    this.outbox.call(credit === undefined ? to.call : to.stream, id, target, args, kwargs, credit); // may throw TypeError: then nothing was sent
    // A lone call leaves at once (the worker starts on it while this tick goes on); the calls of
    // a burst are written together.
    if (this.outbox.count === 1 && inFlight === 0) this.flush();
    else this.posted();
    if (!this.pending.size) this.sentAt = performance.now();
    this.pending.set(id, pending);
    inFlight++;
    if (this.chatty && !this.pollScheduled && this.fromFd !== undefined) {
      this.pollScheduled = true;
      setImmediate(this.pollReplies);
    }
  }

  /**
   * Called when the reply to the only call in flight arrives: the call was quick (within
   * spinUs) or not, and quick ones set the polling budget — a few times their typical latency,
   * so a slow call costs the event loop little polling.
   */
  private timeLoneReply(): void {
    const us = (performance.now() - this.sentAt) * 1000;
    this.chatty = us < this.opts.spinUs!;
    if (this.chatty) this.replyUs += (us - this.replyUs) / 8;
  }

  /**
   * Polls for replies for up to spinUs, right after this tick's calls left (setImmediate: after
   * the outbox was written), so a quick reply is picked up without an event-loop wake-up.
   * Stops at the first data, after spinUs without any, or at once when writes are backed up.
   */
  private readonly pollReplies = (): void => {
    this.pollScheduled = false;
    // Not once the stream is destroyed: its descriptor may be closed and its number reused.
    if (
      this.exited ||
      this.fromPython.destroyed ||
      !this.pending.size ||
      this.pending.size !== inFlight ||
      this.toPython.writableLength
    )
      return;
    if (this.slab.length - this.slabUsed < 4096)
      [this.slab, this.slabUsed] = [Buffer.allocUnsafe(65536), 0];
    const budgetUs = Math.round(
      Math.min(this.opts.spinUs!, Math.max(MIN_POLL_US, 4 * this.replyUs)),
    );
    const n = hostAddon()!.pollRead(this.fromFd!, this.slab, this.slabUsed, budgetUs);
    if (n === -1) this.chatty = false;
    if (n <= 0) return; // timed out, end of stream or an error: left to the event loop
    const chunk = this.slab.subarray(this.slabUsed, this.slabUsed + n);
    this.slabUsed += n;
    this.onData(chunk);
  };

  /**
   * Encodes a frame into the outbox, which is written at the end of this tick, so calls made
   * together leave in one write — or every 256 frames, so the worker can start on a long burst
   * while the rest is encoded. Throws TypeError for a value that cannot be sent (nothing is
   * posted then).
   */
  private post(kind: number, id: number, value?: number): void {
    this.outbox.frame(kind, id, value);
    this.posted();
  }

  /** A frame went into the outbox: write it at the end of this tick, or now when 256 are waiting. */
  private posted(): void {
    if (this.outbox.count === 1) process.nextTick(this.flush);
    else if (this.outbox.count >= 256) this.flush();
  }

  /** Writes what the outbox holds now; `then` runs once it has left. */
  private readonly flush = (then?: () => void): void => {
    const parts = this.outbox.take();
    if (parts.length <= 1) {
      if (parts.length) this.toPython.write(parts[0], then);
      else then?.();
      return;
    }
    this.toPython.cork();
    parts.forEach((p, i) => this.toPython.write(p, i === parts.length - 1 ? then : undefined));
    this.toPython.uncork();
  };

  /** Lets a stream send `n` more items. */
  credit(id: number, n: number): void {
    if (!this.exited) this.post(KIND.toPython.credit, id, n);
  }

  /**
   * Stops a call: the worker cancels its task, or — for code running on its thread — raises
   * KeyboardInterrupt on the SIGINT that follows the cancel message.
   */
  cancel(id: number): void {
    if (this.exited) return;
    this.post(KIND.toPython.cancel, id);
    this.flush(() => {
      if (!this.exited) this.proc.kill("SIGINT");
    });
  }

  /**
   * Runs `start` when call `id` starts: at once, or — with replyEach, where calls run in the
   * order sent — once every call sent before it on this worker has answered. Call it before
   * send().
   */
  whenStarted(id: number, start: () => void): void {
    if (!this.opts.replyEach) return start();
    while (this.head < id && this.pending.get(this.head) === undefined) this.head++;
    if (this.head === id) start();
    else this.startWaiters.set(id, start);
  }

  /** The call now first in line starts (whenStarted). */
  private startNext(): void {
    while (this.head <= this.lastId && this.pending.get(this.head) === undefined)
      this.startWaiters.delete(this.head++); // answered, or never sent: nothing to start
    const start = this.startWaiters.get(this.head);
    if (start && this.startWaiters.delete(this.head)) start();
  }

  /** Forgets a call whose caller gave up on it; a late reply is dropped. */
  forget(id: number): void {
    if (this.pending.delete(id)) inFlight--;
    if (this.startWaiters.size) this.startNext();
    if (!this.pending.size && this.drainWaiters.length)
      this.drainWaiters.splice(0).forEach((wake) => wake());
  }

  /** Resolves once no call is in flight on this worker (at once when none is, or it has exited). */
  drained(): Promise<void> {
    if (!this.pending.size) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Kills the process; `reason` replaces "killed by SIGKILL" in the calls' WorkerCrashedError. */
  kill(reason?: string): void {
    if (this.exited) return;
    this.killReason ??= reason;
    this.proc.kill("SIGKILL");
  }

  /** Asks the worker to exit after its current work; kills it if it has not within `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    if (this.exited) return this.done;
    this.post(KIND.toPython.exit, 0);
    this.flush();
    this.toPython.end();
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.done;
    clearTimeout(timer);
  }
}
