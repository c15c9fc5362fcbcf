"""pyport host worker: runs calls for a Node host (src/host/).

Usage: python -I host_worker.py IN_FD OUT_FD [--path DIR]... [--preload MODULE]... [--memory-mb N]

The protocol runs on the two inherited file descriptors, never on stdin/stdout/stderr, so print()
and C-level writes cannot corrupt it. Frames are a u32 little-endian length and one value in the
encoding of src/host/codec.ts (keep the tags in step). Messages in:
  {"op": "call", "id": n, "target": "pkg.mod:attr.path", "args": [...], "kwargs": {...}}
  {"op": "exit"}
Messages out:
  {"op": "ready", "pid": n, "version": "3.x.y"}            once, after preloading
  {"id": n, "ok": value} | {"id": n, "err": {...}}        one per call, in order

Calls run one at a time on the main thread; coroutine results are awaited on one event loop.
SIGINT interrupts the running call (KeyboardInterrupt) and is ignored between calls.
"""
import asyncio
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
    def __init__(self, in_fd, out_fd):
        self.inp = os.fdopen(in_fd, "rb", buffering=0)
        self.out_fd = out_fd

    def _read_exact(self, n):
        buf = bytearray(n)
        mv = memoryview(buf)
        got = 0
        while got < n:
            k = self.inp.readinto(mv[got:])
            if not k:
                return None
            got += k
        return buf

    def recv(self):
        head = self._read_exact(4)
        if head is None:
            return None
        body = self._read_exact(_u32.unpack(head)[0])
        if body is None:
            return None
        return _Reader(memoryview(body)).value()

    def send_parts(self, parts):
        views = [memoryview(p).cast("B") for p in parts]
        while views:
            n = os.writev(self.out_fd, views)
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if views and n:
                views[0] = views[0][n:]


_running = False


def _on_sigint(signum, frame):
    # Interrupt the call in progress (a deadline or an abort in the host); idle, ignore it.
    if _running:
        raise KeyboardInterrupt


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


def _strip_own_frames(e):
    # The leading frames are this worker's dispatch: not the user's business.
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return e.with_traceback(tb)


_loop = None


def _await(awaitable):
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    task = _loop.create_task(awaitable) if inspect.iscoroutine(awaitable) else asyncio.ensure_future(awaitable, loop=_loop)
    try:
        return _loop.run_until_complete(task)
    except BaseException:
        task.cancel()
        try:
            _loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        except BaseException:
            pass
        raise


def _call(msg):
    global _running
    _running = True
    try:
        fn = _resolve(msg["target"])
        result = fn(*(msg.get("args") or ()), **(msg.get("kwargs") or {}))
        if inspect.isawaitable(result):
            result = _await(result)
    finally:
        _running = False
    return result


def serve(chan):
    while True:
        try:
            msg = chan.recv()
        except KeyboardInterrupt:
            continue
        if msg is None or msg.get("op") == "exit":
            return
        cid = msg.get("id")
        try:
            try:
                reply = frame({"id": cid, "ok": _call(msg)})
            except BaseException as e:  # the call's own error (SystemExit too), or an unsendable result
                reply = frame({"id": cid, "err": describe_error(_strip_own_frames(e))})
        except KeyboardInterrupt:  # an interrupt that arrived just after the call ended
            reply = frame({"id": cid, "err": {"type": "KeyboardInterrupt", "message": "", "traceback": "KeyboardInterrupt\n", "frames": [], "cause": None}})
        chan.send_parts(reply)


def main(argv):
    in_fd, out_fd = int(argv[0]), int(argv[1])
    os.set_inheritable(in_fd, False)
    os.set_inheritable(out_fd, False)
    paths, preload, i = [], [], 2
    while i < len(argv):
        flag, value = argv[i], argv[i + 1]
        if flag == "--path":
            paths.append(value)
        elif flag == "--preload":
            preload.append(value)
        elif flag == "--memory-mb":
            import resource

            limit = int(value) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        i += 2
    sys.path[:0] = paths
    signal.signal(signal.SIGINT, _on_sigint)
    chan = Channel(in_fd, out_fd)
    try:
        for m in preload:
            importlib.import_module(m)
    except BaseException as e:
        chan.send_parts(frame({"op": "ready", "error": describe_error(e)}))
        return 1
    chan.send_parts(frame({"op": "ready", "pid": os.getpid(), "version": sys.version.split()[0]}))
    serve(chan)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
