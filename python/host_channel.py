"""pyport host worker, transport: frames in from the Node host and out to it over the two
protocol descriptors (src/host/protocol.ts). Loaded by host_boot.py as the module
_pyport_host_channel; host_worker.py runs what arrives.

Frames in are decoded as they are read (marshal, by host_codec.py) into a backlog the worker
takes them from; a frame whose value cannot be decoded becomes (BAD, id, (kind, error)), answered
to the call it belongs to. Frames out are written at once, after the replies held back in `held`.
User code calls the host's functions through the module `pyport_host` (HostCalls, below): a
HOST_CALL frame out, then frames in until its answer.
"""
import os
import sys
import time

import _pyport_host_codec as codec
from _pyport_host_codec import HEAD, HEADER, RESTORE, frame, loads, restore

RELEASE = 6  # frame kind, both ways (src/host/protocol.ts KIND)
HOST_CALL = 7  # from the worker: user code calls a host function; the answers, to it:
HOST_OK, HOST_ERR = 7, 8
BAD = 0  # never travels: marks a frame whose value could not be decoded
BIG_FRAME = 1 << 18
REUSE_MAX = 64 << 20
SHARED_YIELD_NS = 5000  # a yield that took longer ran another task on this CPU
_head = HEAD.unpack_from


def _message(kind, cid, payload):
    """(kind, id, value) of one frame; a value that cannot be decoded gives (BAD, id, (kind, error))."""
    if not payload:
        return kind, cid, None
    try:
        value = loads(payload)
        if kind & RESTORE:
            kind ^= RESTORE
            value = restore(value)
    except Exception as e:  # noqa: BLE001 - answered to the call it belongs to
        return BAD, cid, (kind & ~RESTORE, e)
    return kind, cid, value


class Channel:
    """Frames in: `pump()` reads once (blocking when nothing is there) and decodes every complete
    frame into `backlog`. Frames out: `write()`, at once, after the replies held back in `held`
    (see host_worker.py Worker.run_calls)."""

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
        self.held = bytearray()  # replies held back while more calls are waiting (host_worker.py Worker.run_calls)

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
        hand-over then (see native/host.c)."""
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
        append = self.backlog.append
        while end - pos >= HEADER:
            n, kind, cid = _head(data, pos)
            stop = pos + 4 + n
            if stop <= end:
                append(_message(kind, cid, mv[pos + HEADER : stop]))
                pos = stop
            elif n >= BIG_FRAME:
                body = self._read_big(mv[pos + 4 :], n)
                pos = end
                if body is not None:
                    append(_message(kind, cid, body[HEADER - 4 :]))  # decoding copies: the buffer can be reused
            else:
                break
        self.rest = data[pos:] if pos < end else b""
        arena = codec.arena_in
        if arena is not None and arena.unreported:  # rides along with the next write
            self.held += frame(RELEASE, 0, arena.read_to)[0]
            arena.unreported = False

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

    def take(self, i):
        """Marks backlog[i], the next frame, as handled."""
        if i + 1 == len(self.backlog):
            self.backlog.clear()
            self.next = 0
        else:
            self.next = i + 1

    def send(self, kind, cid, value):
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


class HostError(Exception):
    """A host function (JavaScript) threw: `name` (TypeError, …), `message`, and its `stack`."""

    def __init__(self, name, message, stack=""):
        super().__init__("%s: %s" % (name, message))
        self.name, self.message, self.stack = name, message, stack


class HostCalls:
    """`pyport_host.call(name, *args, **kwargs)`: sends HOST_CALL and reads frames until the
    answer arrives. Frames that arrive meanwhile (more calls, cancels) stay in the backlog for
    the worker; the answer is taken out of it. Called on the thread that runs the call."""

    def __init__(self, chan):
        self.chan = chan
        self.last_id = 0

    def call(self, name, *args, **kwargs):
        chan = self.chan
        self.last_id += 1
        hid = self.last_id
        chan.write(frame(HOST_CALL, hid, (name, list(args), kwargs)))  # after held replies
        backlog = chan.backlog
        seen = chan.next
        while True:
            for j in range(max(seen, chan.next), len(backlog)):
                kind, cid, value = backlog[j]
                if cid != hid or kind not in (HOST_OK, HOST_ERR, BAD):
                    continue
                if kind == BAD and value[0] not in (HOST_OK, HOST_ERR):
                    continue
                del backlog[j]
                if kind == HOST_OK:
                    return value
                if kind == BAD:
                    raise value[1]
                raise HostError(value.get("name", "Error"), value.get("message", ""), value.get("stack", ""))
            seen = len(backlog)
            if chan.eof:
                raise HostError("Error", "the host closed the connection before answering %s()" % (name,))
            chan.pump()


class _HostFunctions:
    """`pyport_host.functions.name(*args, **kwargs)` is `pyport_host.call("name", ...)`."""

    def __init__(self, call):
        self._call = call

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        call = self._call
        return lambda *args, **kwargs: call(name, *args, **kwargs)


def install_host_module(chan):
    """Makes `import pyport_host` work in user code: call(), functions, HostError. A fork
    server installs it unbound (chan None) before its preloads import it; each forked worker
    binds that same module object to its channel."""
    module = sys.modules.get("pyport_host")
    if not getattr(module, "_pyport_unbound", False):
        module = type(sys)("pyport_host")
    module._pyport_unbound = chan is None
    module.__doc__ = "Calls into the Node host's functions (pyport Python.start({ hostFunctions }))."
    calls = HostCalls(chan)
    module.call = calls.call
    module.functions = _HostFunctions(calls.call)
    module.HostError = HostError
    HostError.__module__ = "pyport_host"  # how tracebacks and PythonError.pythonType name it
    sys.modules["pyport_host"] = module
