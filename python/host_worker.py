"""pyport host worker: runs calls for a Node host (src/host/).

Usage: python -I host_worker.py IN_FD OUT_FD [--path DIR]... [--preload MODULE]...
                                [--concurrency N] [--memory-mb N] [--spin-us N]
                                [--arena IN_FD,OUT_FD]

The protocol runs on the two inherited file descriptors, never on stdin/stdout/stderr, so print()
and C-level writes cannot corrupt it. A frame is: u32 length (of what follows), u8 kind, u32 call
id, then at most one value in the encoding of src/host/codec.ts (keep tags and kinds in step).
To the worker:
  CALL   [target, args, kwargs]           target is "package.module:attr.path"
  STREAM [target, args, kwargs, credit]   iterate the result, sending at most `credit` items
  CREDIT k                                the stream may send k more items
  CANCEL                                  stop that call (see Worker)
  EXIT
  RELEASE n                               the host has read n more values out of the arena
From the worker:
  READY {"pid", "version"} | {"error"}    once (id 0), after preloading
  OK value | ERR {type, message, traceback, frames, cause}     one per call
  ITEM value ... DONE                     for a stream (or ERR)
  RELEASE n                               the worker has read n more values out of the arena
Long byte values travel through the arena files (see _Arena), when the host passed them.
"""
import os
import _signal as signal  # the C module: the signal wrapper's enums cost ~1 ms of start-up
import struct
import sys
import time

# Imported when first needed, to keep start-up short: asyncio (coroutines, async generators),
# traceback (errors), importlib (calls). datetime and decimal values can only exist once their
# modules are loaded, so the encoder looks them up in sys.modules.

NONE, FALSE, TRUE, INT, BIGINT, FLOAT, STR, BYTES, LIST, OBJECT, MAP, SET, DATE, BYTES_AT = range(14)
# Frame kinds (src/host/codec.ts KIND): to the worker, then from it; RELEASE goes both ways.
CALL, STREAM, CREDIT, CANCEL, EXIT = 1, 2, 3, 4, 5
OK, ERR, ITEM, DONE, READY = 1, 2, 3, 4, 5
RELEASE = 6
_HEAD = struct.Struct("<IBI")  # frame length (after these 4 bytes), kind, call id
SAFE = 2**53 - 1
_u32 = struct.Struct("<I")
_i64 = struct.Struct("<q")
_f64 = struct.Struct("<d")
_AT = struct.Struct("<qI")  # where a value is in the arena: offset, length
BIG_FRAME = 1 << 18
REUSE_MAX = 64 << 20
ARENA_MIN = 1 << 18  # bytes values at least this long go through the arena (src/host/arena.ts)
ARENA_KEEP = 16 << 20  # an arena file larger than this is truncated once all its values are read


class _Arena:
    """One arena file (src/host/arena.ts explains the scheme). Sending: put() appends a value
    and counts it until the host releases it; once all are released, writing starts again at
    offset 0 (after truncating the file if it grew past ARENA_KEEP). Receiving: take() reads a
    value and counts it in `taken`, which Channel.pump sends back as a RELEASE."""

    __slots__ = ("fd", "end", "size", "unreleased", "taken")

    def __init__(self, fd):
        self.fd = fd
        self.end = self.size = self.unreleased = self.taken = 0

    def put(self, b):
        """Writes b at the end: its offset, or -1 when it could not be written (send it inline)."""
        at = self.end
        view = memoryview(b)
        n = 0
        try:
            while n < len(view):
                n += os.pwrite(self.fd, view[n:], at + n)
        except OSError:
            return -1
        self.end += n
        self.size = max(self.size, self.end)
        self.unreleased += 1
        return at

    def release(self, n):
        self.unreleased -= n
        if self.unreleased <= 0:
            self.unreleased = self.end = 0
            if self.size > ARENA_KEEP:
                os.ftruncate(self.fd, 0)
                self.size = 0

    def take(self, at, n):
        data = os.pread(self.fd, n, at)
        while len(data) < n:  # a short read (signal): read on
            more = os.pread(self.fd, n - len(data), at + len(data))
            if not more:
                raise ValueError("host protocol: arena value at %d (%d bytes) runs past the end of the file" % (at, n))
            data += more
        self.taken += 1
        return data


_arena_out = None  # to the host (an _Arena), when the host passed arena files
_arena_in = None  # from the host


class _Writer:
    __slots__ = ("parts", "buf", "arena_puts")

    def __init__(self, kind, cid):
        self.parts = []
        self.buf = bytearray(_HEAD.pack(0, kind, cid))  # the length is filled in by frame()
        self.arena_puts = 0  # values put into the arena for this frame

    def blob(self, b):
        self.buf += _u32.pack(len(b))
        if len(b) < 16384:
            self.buf += b
        else:  # large bytes become their own part: written with writev, never copied
            self.parts.append(self.buf)
            self.parts.append(b)
            self.buf = bytearray()

    def frame(self):
        if not self.parts:  # the common case: one buffer
            buf = self.buf
            _u32.pack_into(buf, 0, len(buf) - 4)
            return [buf]
        self.parts.append(self.buf)
        total = sum(len(p) for p in self.parts) - 4
        self.parts[0][0:4] = _u32.pack(total)
        return self.parts


def _type_name(v):
    t = type(v)
    return t.__qualname__ if t.__module__ == "builtins" else "%s.%s" % (t.__module__, t.__qualname__)


def _encode(w, v, depth=0):
    if depth > 200:
        raise TypeError("cannot send a value nested more than 200 levels deep to JavaScript")
    b = w.buf
    t = type(v)
    if t is str:
        b.append(STR)
        w.blob(v.encode("utf-8", "surrogatepass"))
    elif t is int and -SAFE <= v <= SAFE:
        b.append(INT)
        b += _i64.pack(v)
    elif v is None:
        b.append(NONE)
    elif v is True:
        b.append(TRUE)
    elif v is False:
        b.append(FALSE)
    elif type(v) is int or (isinstance(v, int) and not isinstance(v, bool)):
        if -SAFE <= v <= SAFE:
            b.append(INT)
            b += _i64.pack(v)
        else:
            b.append(BIGINT)
            w.blob(str(int(v)).encode())
    elif isinstance(v, float):
        b.append(FLOAT)
        b += _f64.pack(v)
    elif isinstance(v, str):
        b.append(STR)
        w.blob(v.encode("utf-8", "surrogatepass"))
    elif isinstance(v, (bytes, bytearray, memoryview)):
        v = v if not isinstance(v, memoryview) else v.cast("B")
        at = _arena_out.put(v) if _arena_out is not None and len(v) >= ARENA_MIN else -1
        if at >= 0:
            w.arena_puts += 1
            b.append(BYTES_AT)
            b += _AT.pack(at, len(v))
        else:
            b.append(BYTES)
            w.blob(v)
    elif isinstance(v, (list, tuple, set, frozenset)):
        b.append(SET if isinstance(v, (set, frozenset)) else LIST)
        b += _u32.pack(len(v))
        for x in v:
            _encode(w, x, depth + 1)
    elif isinstance(v, dict):
        if all(type(k) is str for k in v):
            b.append(OBJECT)
            b += _u32.pack(len(v))
            for k, x in v.items():
                w.blob(k.encode("utf-8", "surrogatepass"))
                _encode(w, x, depth + 1)
        else:
            b.append(MAP)
            b += _u32.pack(len(v))
            for k, x in v.items():
                _encode(w, k, depth + 1)
                _encode(w, x, depth + 1)
    elif _encode_dated(w, v):
        pass
    else:
        raise TypeError("cannot send a %s to JavaScript (convert it to a supported type first)" % _type_name(v))


def _encode_dated(w, v):
    dt = sys.modules.get("datetime")
    if dt is not None and isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.timezone.utc)
        micros = (v - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)
        w.buf.append(DATE)
        w.buf += _f64.pack(micros / 1000)
        return True
    if dt is not None and isinstance(v, dt.date):
        w.buf.append(STR)
        w.blob(v.isoformat().encode())
        return True
    dec = sys.modules.get("decimal")
    if dec is not None and isinstance(v, dec.Decimal):
        w.buf.append(STR)
        w.blob(str(v).encode())
        return True
    return False


_NO_VALUE = object()
_PLAIN = frozenset((int, str, float, bool, type(None), bytes, list, dict, tuple))  # never awaitable


_INT_FRAME = struct.Struct("<IBIBq")  # a frame holding a safe int: the common reply, packed at once
_NONE_FRAME = struct.Struct("<IBIB")


def frame(kind, cid, value=_NO_VALUE):
    """The parts of one frame: header, then the encoded value (if any)."""
    t = type(value)
    if t is int and -SAFE <= value <= SAFE:
        return [_INT_FRAME.pack(14, kind, cid, INT, value)]
    if value is None:
        return [_NONE_FRAME.pack(6, kind, cid, NONE)]
    w = _Writer(kind, cid)
    if value is not _NO_VALUE:
        try:
            _encode(w, value)
        except BaseException:
            if w.arena_puts:
                _arena_out.release(w.arena_puts)  # written but never to be sent
            raise
    return w.frame()


_u32_from = _u32.unpack_from
_i64_from = _i64.unpack_from
_f64_from = _f64.unpack_from


def _decode(mv, pos):
    """The value at `pos` of memoryview `mv`, and the position after it."""
    tag = mv[pos]
    pos += 1
    if tag == INT:
        return _i64_from(mv, pos)[0], pos + 8
    if tag == STR:
        n = _u32_from(mv, pos)[0]
        pos += 4
        return str(mv[pos : pos + n], "utf-8", "surrogatepass"), pos + n
    if tag == LIST:
        n = _u32_from(mv, pos)[0]
        pos += 4
        out = []
        append = out.append
        for _ in range(n):
            t = mv[pos]  # ints and strings inline: a call frame is [target, args, kwargs]
            if t == INT:
                append(_i64_from(mv, pos + 1)[0])
                pos += 9
            elif t == STR:
                k = _u32_from(mv, pos + 1)[0]
                pos += 5
                append(str(mv[pos : pos + k], "utf-8", "surrogatepass"))
                pos += k
            elif t == OBJECT and not _u32_from(mv, pos + 1)[0]:  # no kwargs
                append({})
                pos += 5
            else:
                v, pos = _decode(mv, pos)
                append(v)
        return out, pos
    if tag == OBJECT:
        n = _u32_from(mv, pos)[0]
        pos += 4
        out = {}
        for _ in range(n):
            k = _u32_from(mv, pos)[0]
            pos += 4
            key = str(mv[pos : pos + k], "utf-8", "surrogatepass")
            out[key], pos = _decode(mv, pos + k)
        return out, pos
    if tag == FLOAT:
        return _f64_from(mv, pos)[0], pos + 8
    if tag == NONE:
        return None, pos
    if tag == TRUE:
        return True, pos
    if tag == FALSE:
        return False, pos
    if tag == BYTES:
        n = _u32_from(mv, pos)[0]
        pos += 4
        return bytes(mv[pos : pos + n]), pos + n
    if tag == BYTES_AT:
        if _arena_in is None:
            raise ValueError("host protocol: a value in the arena, but there is none")
        at, n = _AT.unpack_from(mv, pos)
        return _arena_in.take(at, n), pos + 12
    if tag == BIGINT:
        n = _u32_from(mv, pos)[0]
        pos += 4
        return int(bytes(mv[pos : pos + n])), pos + n
    if tag == MAP or tag == SET:
        n = _u32_from(mv, pos)[0]
        pos += 4
        out = {} if tag == MAP else set()
        for _ in range(n):
            k, pos = _decode(mv, pos)
            if tag == MAP:
                out[_hashable(k)], pos = _decode(mv, pos)
            else:
                out.add(_hashable(k))
        return out, pos
    if tag == DATE:
        import datetime

        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return epoch + datetime.timedelta(milliseconds=_f64_from(mv, pos)[0]), pos + 8
    raise ValueError("host protocol: unknown tag %d" % tag)


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, set):
        return frozenset(v)
    return v


HOLD_MAX = 1 << 14  # bytes of replies held back at most (Worker.reply_held)
QUICK_NS = 50_000  # a call this quick may run while earlier replies are held back
SHARED_YIELD_NS = 5000  # a yield that took longer ran another task on this CPU


class Channel:
    """Frames in: `pump()` reads once (blocking when nothing is there) and parses every complete
    frame into `backlog`. Frames out: `write()`, at once, after the replies held back in `held`
    (see Worker.reply_held)."""

    def __init__(self, in_fd, out_fd):
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.rest = b""
        self.rbuf = bytearray(1 << 16)
        self.backlog = []
        self.next = 0  # backlog[next:] is still to be handled
        self.eof = False
        self.tuned = False
        self.poller = None
        self.big = None  # a reused receive buffer for large frames
        self.wrote_at = 0  # perf_counter_ns() of the last write
        self.held = bytearray()  # replies held back while more calls are waiting (Worker.reply_held)

    def _tune(self):
        # Big values: a larger send buffer means far fewer round trips with the host (halves the
        # time of an 8 MiB reply). Done once, when first needed: importing socket costs start-up.
        self.tuned = True
        try:
            import socket

            s = socket.socket(fileno=os.dup(self.out_fd))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.close()
        except OSError:
            pass

    def has_input(self):
        return self.next < len(self.backlog)

    def _poll(self):
        """poll(0) on the input: a non-empty list when input is waiting."""
        if self.poller is None:
            import select

            self.poller = select.poll()
            self.poller.register(self.in_fd, select.POLLIN)
        return self.poller.poll(0)

    def readable(self):
        return bool(self._poll())

    def spin(self, budget_ns):
        """Polls for input for up to budget_ns without sleeping; True when some arrived. Polling
        stops early when a yield shows the host shares this CPU: sleeping is the quicker
        hand-over then (see native/hostpoll.c)."""
        poll, now = self._poll, time.perf_counter_ns
        end = now() + budget_ns
        while not poll():
            before = now()
            if before >= end:
                return False
            os.sched_yield()
            if now() - before > SHARED_YIELD_NS:
                return bool(poll())
        return True

    def pump(self):
        try:
            got = os.readv(self.in_fd, [self.rbuf])  # into a reused buffer: os.read(1 MiB) would map fresh memory each time
        except InterruptedError:
            return
        if not got:
            self.eof = True
            return
        chunk = memoryview(self.rbuf)[:got]
        data = self.rest + chunk if self.rest else bytes(chunk)
        mv = memoryview(data)
        pos, end = 0, len(data)
        while end - pos >= 4:
            n = _u32.unpack_from(data, pos)[0]
            if end - pos - 4 >= n:
                self.backlog.append(_message(mv[pos + 4 : pos + 4 + n]))
                pos += 4 + n
            elif n >= BIG_FRAME:
                body = self._read_big(mv[pos + 4 :], n)
                pos = end
                if body is not None:
                    self.backlog.append(_message(body))  # decoding copies: the buffer can be reused
            else:
                break
        self.rest = data[pos:] if pos < end else b""
        if _arena_in is not None and _arena_in.taken:  # rides along with the next write
            self.held += frame(RELEASE, 0, _arena_in.taken)[0]
            _arena_in.taken = 0

    def _read_big(self, have, n):
        """The rest of a large frame, read straight into one buffer (no re-concatenation), as a
        memoryview. Buffers up to REUSE_MAX are kept for the next large frame: memory that is
        already mapped takes the data far faster than fresh pages."""
        buf = self.big
        if buf is None or len(buf) < n:
            buf = bytearray(n)
            if n <= REUSE_MAX:
                self.big = buf
        mv = memoryview(buf)[:n]
        mv[: len(have)] = have
        got = len(have)
        while got < n:
            try:
                k = os.readv(self.in_fd, [mv[got:]])
            except InterruptedError:
                continue
            if not k:
                self.eof = True
                return None
            got += k
        return mv

    def send(self, kind, cid, value=_NO_VALUE):
        self.write(frame(kind, cid, value))

    def release(self):
        """Writes the replies held back, if any."""
        if self.held:
            held, self.held = self.held, bytearray()
            self.write([held])

    def write(self, parts):
        """Writes one frame's parts now (all of them: a blocking fd, retried after signals),
        after any replies held back."""
        if self.held:
            self.release()
        self.wrote_at = time.perf_counter_ns()
        if len(parts) == 1:
            data = parts[0]
            n = 0
            while n < len(data):
                try:
                    n += os.write(self.out_fd, data if n == 0 else memoryview(data)[n:])
                except InterruptedError:
                    pass
            return
        if not self.tuned and sum(len(p) for p in parts) >= BIG_FRAME:
            self._tune()
        views = [memoryview(p).cast("B") for p in parts]
        while views:
            try:
                n = os.writev(self.out_fd, views[:1024])
            except InterruptedError:
                continue
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if views and n:
                views[0] = views[0][n:]


def _message(mv):
    """(kind, id, value) of one frame body."""
    kind, cid = mv[0], _u32_from(mv, 1)[0]
    return kind, cid, (_decode(mv, 5)[0] if len(mv) > 5 else None)


_targets = {}  # target -> (module name, module, attribute names): the parsing of _resolve


def _resolve(target):
    """The object a target names. The attributes are looked up on every call (a module attribute
    may be replaced); the parsed target is remembered while its module stays in sys.modules."""
    parsed = _targets.get(target)
    if parsed is None or sys.modules.get(parsed[0]) is not parsed[1]:
        module, sep, attrs = target.partition(":")
        if not sep or not module or not attrs:
            raise ValueError("target %r must look like 'package.module:attr.path'" % (target,))
        obj = sys.modules.get(module)
        if obj is None:
            import importlib

            obj = importlib.import_module(module)
        if len(_targets) > 4096:
            _targets.clear()
        parsed = _targets[target] = (module, obj, tuple(attrs.split(".")))
    obj = parsed[1]
    for name in parsed[2]:
        obj = getattr(obj, name)
    return obj


def describe_error(e, depth=0):
    import traceback

    tb = e.__traceback__
    cause = e.__cause__ if e.__cause__ is not None else (None if e.__suppress_context__ else e.__context__)
    return {
        "type": _type_name(e),
        "message": str(e),
        "traceback": "".join(traceback.format_exception(type(e), e, tb)),
        "frames": [{"file": f.filename, "line": f.lineno, "name": f.name} for f in traceback.extract_tb(tb)],
        "cause": describe_error(cause, depth + 1) if cause is not None and depth < 20 else None,
    }


def _user_error(e):
    # The leading frames are this worker's dispatch: not the user's business.
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
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
    last time (see reply_held): a burst of quick calls is answered in a few writes. If the
    process dies, held replies die with it: those calls get WorkerCrashedError.

    Cancelling: a "cancel" message cancels the call's task, or marks a call not read yet. For
    code running on the main thread the host also sends SIGINT, which raises KeyboardInterrupt
    only if that call's cancel message has arrived (so it never hits another call)."""

    def __init__(self, chan, concurrency, spin_us=0):
        self.chan = chan
        self.concurrency = concurrency
        self.spin_ns = spin_us * 1000
        self.chatty = True  # READY is a reply: the first call usually follows it at once
        self.loop = None
        self.slots = None
        self.tasks = {}
        self.streams = {}
        self.cancelled = set()
        self.running = None  # id of the call whose code runs on the main thread right now
        self.last_id = 0  # ids grow: a cancel for a higher id is for a call not read yet
        self.done = False
        self.quick = {}  # target -> its last call took under QUICK_NS (replies may be held before it)

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

    def reply_held(self, parts):
        """A result of a plain function: held back while more calls already received are waiting
        (one write for a burst of quick calls), up to HOLD_MAX bytes. Held replies are written
        before the worker waits for input, before a call to a target that was not quick last
        time (so a slow call does not hold them up), and before any other frame."""
        chan = self.chan
        if len(parts) == 1 and chan.has_input() and len(chan.held) < HOLD_MAX:
            chan.held += parts[0]
        else:
            chan.write(parts)

    def reply_error(self, cid, e):
        self.reply(frame(ERR, cid, _user_error(e)))

    def send_result(self, cid, result, hold=False):
        try:
            parts = frame(OK, cid, result)
        except BaseException as e:
            return self.reply_error(cid, e)
        (self.reply_held if hold else self.reply)(parts)

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
        while not self.done:
            if not chan.has_input():
                chan.release()
                if self.tasks:
                    self.run_loop_until_input()
                elif chan.eof:
                    return
                else:
                    self.wait_for_input()
                continue
            m = chan.backlog[chan.next]  # the next frame (inline: this loop runs once per call)
            chan.next += 1
            if chan.next == len(chan.backlog):
                chan.backlog.clear()
                chan.next = 0
            self.handle(*m)

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

    def handle(self, kind, cid, value):
        if kind == CALL or kind == STREAM:
            if cid > self.last_id:
                self.last_id = cid
            if cid in self.cancelled:
                self.cancelled.discard(cid)
                return self.reply_error(cid, Cancelled("cancelled before it started"))
            self.start_call(cid, kind == STREAM, *value)
        elif kind == CREDIT:
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
            _arena_out.release(value)

    def start_call(self, cid, stream, target, args, kwargs, credit=16):
        quick = self.quick
        if self.chan.held and not quick.get(target):
            self.chan.release()
        try:
            fn = _resolve(target)
            self.running = cid
            t0 = time.perf_counter_ns()
            try:
                result = fn(*args, **kwargs)
            finally:
                self.running = None
                if len(quick) > 4096:
                    quick.clear()
                quick[target] = time.perf_counter_ns() - t0 < QUICK_NS
        except BaseException as e:
            return self.reply_error(cid, e)
        if stream:
            if not (hasattr(result, "__anext__") or hasattr(result, "__next__") or hasattr(result, "__iter__")):
                return self.reply_error(cid, TypeError("stream(): %s returned a %s, not an iterator or async iterator" % (target, _type_name(result))))
            self.spawn(cid, self.stream(cid, result, credit))
        elif type(result) not in _PLAIN and hasattr(result, "__await__"):
            self.spawn(cid, self.await_result(cid, result))
        else:
            self.send_result(cid, result, hold=True)

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
    global _arena_in, _arena_out
    in_fd, out_fd = int(argv[0]), int(argv[1])
    os.set_inheritable(in_fd, False)
    os.set_inheritable(out_fd, False)
    paths, preload, concurrency, spin_us, i = [], [], 1, 0, 2
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
        elif flag == "--arena":
            a_in, a_out = (int(fd) for fd in value.split(","))
            os.set_inheritable(a_in, False)
            os.set_inheritable(a_out, False)
            _arena_in, _arena_out = _Arena(a_in), _Arena(a_out)
        elif flag == "--memory-mb":
            import resource

            limit = int(value) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        i += 2
    sys.path[:0] = paths
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    chan = Channel(in_fd, out_fd)
    try:
        import importlib

        for m in preload:
            importlib.import_module(m)
    except BaseException as e:
        chan.send(READY, 0, {"error": describe_error(e)})
        return 1
    worker = Worker(chan, concurrency, spin_us)
    chan.send(READY, 0, {"pid": os.getpid(), "version": sys.version.split()[0]})
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
