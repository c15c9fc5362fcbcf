"""pyport host worker: runs calls for a Node host (src/host/).

Usage: python -I host_worker.py IN_FD OUT_FD [--path DIR]... [--preload MODULE]...
                                [--concurrency N] [--memory-mb N]

The protocol runs on the two inherited file descriptors, never on stdin/stdout/stderr, so print()
and C-level writes cannot corrupt it. Frames are a u32 little-endian length and one value in the
encoding of src/host/codec.ts (keep the tags in step). Messages in:
  {"op": "call", "id": n, "target": "pkg.mod:attr.path", "args": [...], "kwargs": {...},
   "stream": bool, "credit": n}
  {"op": "credit", "id": n, "n": k}     a stream may send k more items
  {"op": "cancel", "id": n}             stop that call (see Worker)
  {"op": "exit"}
Messages out:
  {"op": "ready", "pid": n, "version": "3.x.y"}            once, after preloading
  {"id": n, "ok": value} | {"id": n, "err": {...}}        one per call
  {"id": n, "item": value} ... {"id": n, "done": true}    for a stream
"""
import asyncio
import collections
import datetime
import decimal
import importlib
import inspect
import os
import signal
import struct
import sys
import traceback

NONE, FALSE, TRUE, INT, BIGINT, FLOAT, STR, BYTES, LIST, OBJECT, MAP, SET, DATE = range(13)
SAFE = 2**53 - 1
_u32 = struct.Struct("<I")
_i64 = struct.Struct("<q")
_f64 = struct.Struct("<d")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class _Writer:
    __slots__ = ("parts", "buf", "size")

    def __init__(self):
        self.parts = []
        self.buf = bytearray(4)  # the length prefix, filled in by frame()
        self.size = 0

    def blob(self, b):
        self.buf += _u32.pack(len(b))
        if len(b) < 16384:
            self.buf += b
        else:  # large bytes become their own part: written with writev, never copied
            self.parts.append(self.buf)
            self.parts.append(b)
            self.buf = bytearray()

    def frame(self):
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
    if v is None:
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
        b.append(BYTES)
        w.blob(v if not isinstance(v, memoryview) else v.cast("B"))
    elif isinstance(v, (list, tuple)):
        b.append(LIST)
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
    elif isinstance(v, (set, frozenset)):
        b.append(SET)
        b += _u32.pack(len(v))
        for x in v:
            _encode(w, x, depth + 1)
    elif isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        b.append(DATE)
        b += _f64.pack((v - _EPOCH) // datetime.timedelta(microseconds=1) / 1000)
    elif isinstance(v, datetime.date):
        b.append(STR)
        w.blob(v.isoformat().encode())
    elif isinstance(v, decimal.Decimal):
        b.append(STR)
        w.blob(str(v).encode())
    else:
        raise TypeError("cannot send a %s to JavaScript (convert it to a supported type first)" % _type_name(v))


def frame(value):
    w = _Writer()
    _encode(w, value)
    return w.frame()


class _Reader:
    __slots__ = ("mv", "pos")

    def __init__(self, mv):
        self.mv = mv
        self.pos = 0

    def u32(self):
        v = _u32.unpack_from(self.mv, self.pos)[0]
        self.pos += 4
        return v

    def raw(self):
        n = self.u32()
        s = self.mv[self.pos : self.pos + n]
        self.pos += n
        return s

    def value(self):
        tag = self.mv[self.pos]
        self.pos += 1
        if tag == NONE:
            return None
        if tag == FALSE:
            return False
        if tag == TRUE:
            return True
        if tag == INT:
            v = _i64.unpack_from(self.mv, self.pos)[0]
            self.pos += 8
            return v
        if tag == BIGINT:
            return int(bytes(self.raw()))
        if tag == FLOAT:
            v = _f64.unpack_from(self.mv, self.pos)[0]
            self.pos += 8
            return v
        if tag == STR:
            return str(self.raw(), "utf-8", "surrogatepass")
        if tag == BYTES:
            return bytes(self.raw())
        if tag == LIST:
            return [self.value() for _ in range(self.u32())]
        if tag == OBJECT:
            out = {}
            for _ in range(self.u32()):
                k = str(self.raw(), "utf-8", "surrogatepass")
                out[k] = self.value()
            return out
        if tag == MAP:
            out = {}
            for _ in range(self.u32()):
                k = _hashable(self.value())
                out[k] = self.value()
            return out
        if tag == SET:
            return {_hashable(self.value()) for _ in range(self.u32())}
        if tag == DATE:
            ms = _f64.unpack_from(self.mv, self.pos)[0]
            self.pos += 8
            return _EPOCH + datetime.timedelta(milliseconds=ms)
        raise ValueError("host protocol: unknown tag %d" % tag)


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, set):
        return frozenset(v)
    return v


class Channel:
    """Frames in from a non-blocking fd (parsed into a backlog), frames out to a blocking fd."""

    def __init__(self, in_fd, out_fd):
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.inbuf = bytearray()
        self.backlog = collections.deque()
        self.eof = False
        os.set_blocking(in_fd, False)

    def pump(self):
        """Reads what is available and moves every complete frame to the backlog. Also called
        from the SIGINT handler, so it never dispatches anything itself."""
        while not self.eof:
            try:
                chunk = os.read(self.in_fd, 1 << 20)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            if not chunk:
                self.eof = True
                break
            self.inbuf += chunk
        buf = self.inbuf
        while len(buf) >= 4:
            n = _u32.unpack_from(buf, 0)[0]
            if len(buf) < 4 + n:
                break
            body = bytes(buf[4 : 4 + n])
            del buf[: 4 + n]
            self.backlog.append(_Reader(memoryview(body)).value())

    def send(self, value):
        self.send_parts(frame(value))

    def send_parts(self, parts):
        views = [memoryview(p).cast("B") for p in parts]
        while views:
            try:
                n = os.writev(self.out_fd, views)
            except InterruptedError:
                continue
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if views and n:
                views[0] = views[0][n:]


def _resolve(target):
    module, sep, attrs = target.partition(":")
    if not sep or not module or not attrs:
        raise ValueError("target %r must look like 'package.module:attr.path'" % (target,))
    obj = importlib.import_module(module)
    for name in attrs.split("."):
        obj = getattr(obj, name)
    return obj


def _frames(tb):
    return [{"file": f.filename, "line": f.lineno, "name": f.name} for f in traceback.extract_tb(tb)]


def describe_error(e, depth=0):
    tb = e.__traceback__
    cause = e.__cause__ if e.__cause__ is not None else (None if e.__suppress_context__ else e.__context__)
    return {
        "type": _type_name(e),
        "message": str(e),
        "traceback": "".join(traceback.format_exception(type(e), e, tb)),
        "frames": _frames(tb),
        "cause": describe_error(cause, depth + 1) if cause is not None and depth < 20 else None,
    }


def _user_error(e):
    # The leading frames are this worker's dispatch: not the user's business.
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return describe_error(e.with_traceback(tb))


class Worker:
    """Dispatches messages on an asyncio loop. Plain functions and generator steps run on the
    loop's thread (one at a time: they block it); coroutines and async generators run as tasks,
    at most `concurrency` coroutine calls at once. Cancelling a call: a "cancel" message cancels
    its task; for code running on the thread, the host also sends SIGINT, which raises
    KeyboardInterrupt there only if that call's cancel message has arrived."""

    def __init__(self, chan, concurrency):
        self.chan = chan
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.slots = asyncio.Semaphore(concurrency)
        self.tasks = {}
        self.streams = {}
        self.cancelled = set()
        self.running = None  # id of the call whose code runs on the thread right now
        self.last_id = 0  # ids grow: a cancel for a higher id is for a call not read yet
        self.done = False

    def on_sigint(self, signum, frame):
        if self.running is None:
            return
        self.chan.pump()
        for m in self.chan.backlog:
            if m.get("op") == "cancel" and m.get("id") == self.running:
                raise KeyboardInterrupt

    def run_user(self, cid, fn, *args, **kwargs):
        self.running = cid
        try:
            return fn(*args, **kwargs)
        finally:
            self.running = None

    def reply_error(self, cid, e):
        self.chan.send({"id": cid, "err": _user_error(e)})

    def on_readable(self):
        self.chan.pump()
        self.drain()

    def drain(self):
        while self.chan.backlog and not self.done:
            self.handle(self.chan.backlog.popleft())
        if self.chan.eof and not self.done:
            self.stop()

    def stop(self):
        self.done = True
        self.loop.stop()

    def handle(self, msg):
        op, cid = msg.get("op"), msg.get("id")
        if op == "call":
            self.last_id = max(self.last_id, cid)
            if cid in self.cancelled:
                self.cancelled.discard(cid)
                return self.reply_error(cid, asyncio.CancelledError("cancelled before it started"))
            self.start_call(cid, msg)
        elif op == "credit":
            st = self.streams.get(cid)
            if st is not None:
                st["credit"] += msg.get("n", 0)
                st["event"].set()
        elif op == "cancel":
            task = self.tasks.get(cid)
            if task is not None:
                task.cancel()
            elif cid > self.last_id:
                self.cancelled.add(cid)  # not read yet: skip it when it comes
        elif op == "exit":
            self.stop()

    def start_call(self, cid, msg):
        try:
            fn = _resolve(msg["target"])
            result = self.run_user(cid, fn, *(msg.get("args") or ()), **(msg.get("kwargs") or {}))
        except BaseException as e:
            return self.reply_error(cid, e)
        if msg.get("stream"):
            if not (hasattr(result, "__anext__") or hasattr(result, "__next__") or hasattr(result, "__iter__")):
                return self.reply_error(cid, TypeError("stream(): %s returned a %s, not an iterator or async iterator" % (msg["target"], _type_name(result))))
            self.tasks[cid] = self.loop.create_task(self.stream(cid, result, msg.get("credit", 16)))
        elif inspect.isawaitable(result):
            self.tasks[cid] = self.loop.create_task(self.await_result(cid, result))
        else:
            self.send_result(cid, result)

    def send_result(self, cid, result):
        try:
            parts = frame({"id": cid, "ok": result})
        except BaseException as e:
            return self.reply_error(cid, e)
        self.chan.send_parts(parts)

    async def await_result(self, cid, awaitable):
        try:
            async with self.slots:
                result = await awaitable
        except BaseException as e:
            self.reply_error(cid, e)
        else:
            self.send_result(cid, result)
        finally:
            self.tasks.pop(cid, None)

    async def stream(self, cid, it, credit):
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
                self.chan.send_parts(frame({"id": cid, "item": item}))
                st["credit"] -= 1
                await asyncio.sleep(0)  # let credit and cancel messages in
            self.chan.send({"id": cid, "done": True})
        except BaseException as e:
            self.reply_error(cid, e)
        finally:
            self.streams.pop(cid, None)
            self.tasks.pop(cid, None)
            close = getattr(it, "aclose", None) if is_async else getattr(it, "close", None)
            if close is not None:
                try:
                    r = close()
                    if inspect.isawaitable(r):
                        await r
                except BaseException:
                    pass

    def serve(self):
        signal.signal(signal.SIGINT, self.on_sigint)
        self.loop.add_reader(self.chan.in_fd, self.on_readable)
        self.loop.call_soon(self.drain)  # frames read before the loop started
        self.loop.run_forever()


def main(argv):
    in_fd, out_fd = int(argv[0]), int(argv[1])
    os.set_inheritable(in_fd, False)
    os.set_inheritable(out_fd, False)
    paths, preload, concurrency, i = [], [], 1, 2
    while i < len(argv):
        flag, value = argv[i], argv[i + 1]
        if flag == "--path":
            paths.append(value)
        elif flag == "--preload":
            preload.append(value)
        elif flag == "--concurrency":
            concurrency = int(value)
        elif flag == "--memory-mb":
            import resource

            limit = int(value) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        i += 2
    sys.path[:0] = paths
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    chan = Channel(in_fd, out_fd)
    try:
        for m in preload:
            importlib.import_module(m)
    except BaseException as e:
        chan.send({"op": "ready", "error": describe_error(e)})
        return 1
    worker = Worker(chan, concurrency)
    chan.send({"op": "ready", "pid": os.getpid(), "version": sys.version.split()[0]})
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
