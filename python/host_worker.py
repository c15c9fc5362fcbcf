"""pyport host worker: runs calls for a Node host (src/host/). Started by host_boot.py:

  python -I host_boot.py CACHE_PREFIX IN_FD OUT_FD [--path DIR]... [--preload MODULE]...
         [--concurrency N] [--memory-mb N] [--spin-us N] [--arena IN_FD,OUT_FD] [--reply-each 1]

The protocol (src/host/protocol.ts) runs on the two inherited file descriptors, never on
stdin/stdout/stderr, so print() and C-level writes cannot corrupt it. Frames to the worker:
  CALL   (target, args, kwargs)           target is "package.module:attr.path"
  STREAM (target, args, kwargs, credit)   iterate the result, sending at most `credit` items
  CREDIT k                                the stream may send k more items
  CANCEL                                  stop that call (see Worker)
  EXIT
  RELEASE offset                          the host has read the arena up to offset
From the worker:
  READY pid                               once (id 0), after preloading; ERR with id 0 if that failed
  OK value | ERR {type, message, traceback, frames, cause}     one per call
  ITEM value ... DONE                     for a stream (or ERR)
  RELEASE offset                          the worker has read the arena up to offset
  HOST_CALL (name, args, kwargs)          user code called pyport_host.call(); the host answers
                                          HOST_OK value or HOST_ERR {name, message, stack}
Values are decoded and encoded by host_codec.py and frames read and written by host_channel.py,
which host_boot.py loads as the modules _pyport_host_codec and _pyport_host_channel.
"""
import os
import _signal as signal  # the C module: the signal wrapper's enums cost ~1 ms of start-up
import sys
import time

import _pyport_host_channel
import _pyport_host_codec as codec
from _pyport_host_channel import BAD, HOST_ERR, HOST_OK, Channel, install_host_module
from _pyport_host_codec import INT, NONE, SAFE, _INT_FRAME, _NONE_FRAME, frame, type_name

# Imported when first needed, to keep start-up short: asyncio (coroutines, async generators),
# traceback (errors), select (polling), socket (large writes).

# Frame kinds (src/host/protocol.ts KIND): to the worker, then from it; RELEASE goes both ways.
# BAD never travels: it marks a frame whose value could not be decoded.
CALL, STREAM, CREDIT, CANCEL, EXIT = 1, 2, 3, 4, 5
OK, ERR, ITEM, DONE, READY = 1, 2, 3, 4, 5
RELEASE = 6
# HOST_CALL (7) goes from the worker, HOST_OK (7) and HOST_ERR (8) to it: host_channel.py HostCalls.
HOLD_MAX = 1 << 14  # bytes of replies held back at most (Worker.run_calls)
QUICK_NS = 50_000  # a call this quick may run while earlier replies are held back
_PLAIN = frozenset((int, str, float, bool, type(None), bytes, list, dict, tuple))  # never awaitable
_OWN_FILES = frozenset((__file__, codec.__file__, _pyport_host_channel.__file__))


class _Target:
    """A parsed target: its module (while that stays in sys.modules) and attribute path, and
    whether its last call was quick (see Worker.run_calls)."""

    __slots__ = ("module_name", "module", "attrs", "quick")

    def __init__(self, target):
        module, sep, attrs = target.partition(":")
        if not sep or not module or not attrs:
            raise ValueError("target %r must look like 'package.module:attr.path'" % (target,))
        obj = sys.modules.get(module)
        if obj is None:
            __import__(module)  # for "a.b", this returns a: the module is sys.modules["a.b"]
            obj = sys.modules[module]
        self.module_name, self.module, self.attrs, self.quick = module, obj, tuple(attrs.split(".")), False


_targets = {}  # target string -> _Target, while its module stays loaded
_modules = sys.modules
_now = time.perf_counter_ns


def _parse_target(target):
    if len(_targets) > 4096:
        _targets.clear()
    t = _targets[target] = _Target(target)
    return t


def _resolve(target):
    """The object a target names (its attributes looked up now: a module attribute may be replaced)."""
    t = _targets.get(target)
    if t is None or _modules.get(t.module_name) is not t.module:
        t = _parse_target(target)
    obj = t.module
    for name in t.attrs:
        obj = getattr(obj, name)
    return obj


def describe_error(e, depth=0):
    import traceback

    tb = e.__traceback__
    cause = e.__cause__ if e.__cause__ is not None else (None if e.__suppress_context__ else e.__context__)
    return {
        "type": type_name(e),
        "message": str(e),
        "traceback": "".join(traceback.format_exception(type(e), e, tb)),
        "frames": [{"file": f.filename, "line": f.lineno, "name": f.name} for f in traceback.extract_tb(tb)],
        "cause": describe_error(cause, depth + 1) if cause is not None and depth < 20 else None,
    }


def _user_error(e):
    # The leading frames are this worker's dispatch: not the user's business.
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in _OWN_FILES:
        tb = tb.tb_next
    return describe_error(e.with_traceback(tb))


class Cancelled(Exception):
    """A call cancelled before it started."""


class Worker:
    """Runs calls. Plain functions and generator steps run on the main thread, one at a time,
    straight from a blocking read loop (the fast path: no event loop). Coroutines and async
    generators run as asyncio tasks — at most `concurrency` coroutine calls at once — and while
    any task is alive the loop runs, stopping whenever input arrives. A reply is written as soon
    as it is ready (one writev), except that a plain function's result is held back while more
    calls already received wait behind it, and only ahead of calls to targets that were quick
    last time (see run_calls): a burst of quick calls is answered in a few writes. If the process
    dies, held replies die with it: those calls get WorkerCrashedError. With hold=False
    (--reply-each) nothing is held: each reply leaves before the next call starts.

    Cancelling: a "cancel" message cancels the call's task, or marks a call not read yet. For
    code running on the main thread the host also sends SIGINT, which raises KeyboardInterrupt
    only if that call's cancel message has arrived (so it never hits another call)."""

    def __init__(self, chan, concurrency, spin_us=0, awaited=False, hold=True):
        self.chan = chan
        # False (--reply-each): every reply is written before the next call starts, so when the
        # process dies the host knows which calls had not started (src/host/worker.ts).
        self.hold = hold
        self.concurrency = concurrency
        self.spin_ns = spin_us * 1000
        # When the host waits for READY, the first call usually follows it at once: poll for it.
        # Otherwise calls may already be waiting, and the first read finds them.
        self.chatty = awaited
        self.loop = None
        self.slots = None
        self.tasks = {}
        self.streams = {}
        self.cancelled = set()
        self.running = None  # id of the call whose code runs on the main thread right now
        self.last_id = 0  # ids grow: a cancel for a higher id is for a call not read yet
        self.done = False

    # -- the SIGINT handler --------------------------------------------------------------
    def on_sigint(self, signum, frame):
        if self.running is None:
            return
        while self.chan.readable() and not self.chan.eof:
            self.chan.pump()
        for m in self.chan.backlog[self.chan.next :]:
            if m[0] == CANCEL and m[1] == self.running:
                raise KeyboardInterrupt

    def run_user(self, cid, fn, *args, **kwargs):
        self.running = cid
        try:
            return fn(*args, **kwargs)
        finally:
            self.running = None

    # -- replies ---------------------------------------------------------------------------
    def reply(self, parts):
        self.chan.write(parts)

    def reply_error(self, cid, e):
        self.reply(frame(ERR, cid, _user_error(e)))

    def send_result(self, cid, result):
        try:
            parts = frame(OK, cid, result)
        except BaseException as e:
            return self.reply_error(cid, e)
        self.reply(parts)

    # -- the main loop -----------------------------------------------------------------------
    def serve(self):
        signal.signal(signal.SIGINT, self.on_sigint)
        chan = self.chan
        try:
            self.serve_until_done()
        finally:
            chan.release()

    def serve_until_done(self):
        chan = self.chan
        backlog = chan.backlog
        while not self.done:
            i = chan.next
            if i == len(backlog):
                chan.release()
                if self.tasks:
                    self.run_loop_until_input()
                elif chan.eof:
                    return
                else:
                    self.wait_for_input()
            elif backlog[i][0] == CALL:
                self.run_calls()
            else:
                kind, cid, value = backlog[i]
                chan.take(i)
                self.handle(kind, cid, value)

    def run_calls(self):
        """Runs the calls at the head of the backlog on this thread, one after another, answering
        each (a coroutine becomes a task). The result of a plain function is held back while more
        frames already received are waiting — one write for a burst of quick calls — up to
        HOLD_MAX bytes. Held replies are written before the worker waits for input, before a call
        to a target that was not quick last time (so a slow call does not hold them up), and
        before any other frame. This loop runs once per call: it keeps to locals."""
        chan, backlog, cancelled, targets, modules, now = self.chan, self.chan.backlog, self.cancelled, _targets, _modules, _now
        hold = self.hold
        i = chan.next
        while i < len(backlog):
            kind, cid, value = backlog[i]
            if kind != CALL:
                break
            i += 1
            chan.next = i  # the SIGINT handler looks at what is still to come
            self.last_id = cid
            if cancelled and cid in cancelled:
                cancelled.discard(cid)
                self.reply_error(cid, Cancelled("cancelled before it started"))
                continue
            target, args, kwargs = value
            t = targets.get(target)
            if chan.held and (t is None or not t.quick):
                chan.release()
            try:
                if t is None or modules.get(t.module_name) is not t.module:
                    t = _parse_target(target)
                fn = t.module
                for name in t.attrs:  # looked up on every call: a module attribute may be replaced
                    fn = getattr(fn, name)
                self.running = cid
                started = now()
                try:
                    result = fn(*args, **kwargs)
                finally:
                    self.running = None
                    t.quick = now() - started < QUICK_NS
            except BaseException as e:
                self.reply_error(cid, e)
                continue
            rt = type(result)
            if rt is int and -SAFE <= result <= SAFE:
                data = _INT_FRAME.pack(14, OK, cid, INT, result)
            elif result is None:
                data = _NONE_FRAME.pack(6, OK, cid, NONE)
            elif rt not in _PLAIN and hasattr(result, "__await__"):
                self.spawn(cid, self.await_result(cid, result))
                continue
            else:
                try:
                    parts = frame(OK, cid, result)
                except BaseException as e:
                    self.reply_error(cid, e)
                    continue
                if len(parts) > 1:
                    chan.write(parts)
                    continue
                data = parts[0]
            if hold and i < len(backlog) and len(chan.held) < HOLD_MAX:
                chan.held += data
            else:
                chan.write([data])
        if i == len(backlog):
            backlog.clear()
            chan.next = 0

    def start_stream(self, cid, target, args, kwargs, credit):
        try:
            fn = _resolve(target)
            result = self.run_user(cid, fn, *args, **kwargs)
        except BaseException as e:
            return self.reply_error(cid, e)
        if not (hasattr(result, "__anext__") or hasattr(result, "__next__") or hasattr(result, "__iter__")):
            return self.reply_error(cid, TypeError("stream(): %s returned a %s, not an iterator or async iterator" % (target, type_name(result))))
        self.spawn(cid, self.stream(cid, result, credit))

    def handle(self, kind, cid, value):
        """Any frame but a call (run_calls runs those)."""
        if kind == STREAM:
            self.last_id = cid
            if cid in self.cancelled:
                self.cancelled.discard(cid)
                return self.reply_error(cid, Cancelled("cancelled before it started"))
            return self.start_stream(cid, *value)
        if kind == CREDIT:
            st = self.streams.get(cid)
            if st is not None:
                st["credit"] += value
                st["event"].set()
        elif kind == CANCEL:
            task = self.tasks.get(cid)
            if task is not None:
                task.cancel()
            elif cid > self.last_id:
                self.cancelled.add(cid)
        elif kind == EXIT:
            self.done = True
        elif kind == RELEASE:
            codec.arena_out.read_up_to(value)
        elif kind == BAD:
            meant, error = value
            if meant in (HOST_OK, HOST_ERR):
                return  # the answer to a host call whose caller was interrupted
            if meant != CALL and meant != STREAM:
                raise error  # a frame of the host's own that does not decode: a pyport bug
            self.last_id = cid
            self.reply_error(cid, error)

    def wait_for_input(self):
        """Reads the next frames. While calls come back to back (the last one arrived within the
        spin budget of the reply before it), polls for up to that budget before sleeping: the
        next call is then picked up without a wake-up, at the cost of up to spin_ns of CPU."""
        chan = self.chan
        if self.spin_ns:
            if self.chatty and chan.spin(self.spin_ns):
                return chan.pump()
            chan.pump()
            self.chatty = time.perf_counter_ns() - chan.wrote_at < self.spin_ns
            return
        chan.pump()

    def run_loop_until_input(self):
        loop, chan = self.loop, self.chan

        def on_input():
            chan.pump()
            if chan.has_input() or chan.eof:
                loop.stop()

        loop.add_reader(chan.in_fd, on_input)
        try:
            loop.run_forever()
        finally:
            loop.remove_reader(chan.in_fd)
        if chan.eof and not chan.has_input():
            for t in list(self.tasks.values()):
                t.cancel()
            self.done = True

    def spawn(self, cid, coro):
        if self.loop is None:
            import asyncio

            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.slots = asyncio.Semaphore(self.concurrency)
        task = self.loop.create_task(coro)
        self.tasks[cid] = task

        def finished(_):
            self.tasks.pop(cid, None)
            if not self.tasks:
                self.loop.stop()

        task.add_done_callback(finished)

    async def await_result(self, cid, awaitable):
        try:
            async with self.slots:
                result = await awaitable
        except BaseException as e:
            self.reply_error(cid, e)
        else:
            self.send_result(cid, result)

    async def stream(self, cid, it, credit):
        import asyncio

        st = self.streams[cid] = {"credit": credit, "event": asyncio.Event()}
        is_async = hasattr(it, "__anext__")
        if not is_async and not hasattr(it, "__next__"):
            it = iter(it)
        try:
            while True:
                while st["credit"] <= 0:
                    st["event"].clear()
                    await st["event"].wait()
                try:
                    item = await it.__anext__() if is_async else self.run_user(cid, next, it)
                except (StopIteration, StopAsyncIteration):
                    break
                self.reply(frame(ITEM, cid, item))
                st["credit"] -= 1
                await asyncio.sleep(0)  # let credit and cancel messages in
            self.reply(frame(DONE, cid))
        except BaseException as e:
            self.reply_error(cid, e)
        finally:
            self.streams.pop(cid, None)
            close = getattr(it, "aclose", None) if is_async else getattr(it, "close", None)
            if close is not None:
                try:
                    r = close()
                    if hasattr(r, "__await__"):
                        await r
                except BaseException:
                    pass


def main(argv):
    in_fd, out_fd = int(argv[0]), int(argv[1])
    os.set_inheritable(in_fd, False)
    os.set_inheritable(out_fd, False)
    paths, preload, concurrency, spin_us, hold, i = [], [], 1, 0, True, 2
    while i < len(argv):
        flag, value = argv[i], argv[i + 1]
        if flag == "--path":
            paths.append(value)
        elif flag == "--preload":
            preload.append(value)
        elif flag == "--concurrency":
            concurrency = int(value)
        elif flag == "--spin-us":
            spin_us = int(value)
        elif flag == "--reply-each":
            hold = value != "1"
        elif flag == "--arena":
            a_in, a_out = (int(fd) for fd in value.split(","))
            os.set_inheritable(a_in, False)
            os.set_inheritable(a_out, False)
            codec.arena_in, codec.arena_out = codec.Arena(a_in), codec.Arena(a_out)
        elif flag == "--memory-mb":
            import resource

            limit = int(value) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        i += 2
    sys.path[:0] = paths
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    chan = Channel(in_fd, out_fd)
    install_host_module(chan)
    try:
        for m in preload:
            __import__(m)
    except BaseException as e:
        chan.send(ERR, 0, describe_error(e))
        return 1
    worker = Worker(chan, concurrency, spin_us, awaited=bool(preload), hold=hold)  # the host waits for READY only after preloads (src/host/worker.ts)
    chan.send(READY, 0, os.getpid())
    worker.serve()
    return 0
