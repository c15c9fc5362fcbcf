"""pyport host worker, values: decoding what the Node host sends, encoding what goes back, and the
arena files long byte values travel through. Loaded by host_boot.py as the module
_pyport_host_codec; src/host/protocol.ts describes the protocol (keep the numbers in step).

From the host: CPython marshal data (src/host/encode.ts), decoded by marshal.loads in C. In a
frame whose kind has the RESTORE bit, placeholder tuples (Ellipsis, kind, ...) stand for what
marshal has no type for, and restore() puts the real values in.

To the host: pyport's tags (src/host/decode.ts), which keep what JS needs to know (a safe integer
or a big one, str keys or not) and refuse every other type with a TypeError that names it.
"""
import marshal
import os
import struct
import sys

NONE, FALSE, TRUE, INT, BIGINT, FLOAT, STR, BYTES, LIST, OBJECT, MAP, SET, DATE, BYTES_AT = range(14)
RESTORE = 0x80
PLACEHOLDER_ARENA_BYTES, PLACEHOLDER_DATE = 0, 1
HEAD = struct.Struct("<IBI")  # frame length (after these 4 bytes), kind, call id
HEADER = 9
SAFE = 2**53 - 1
ARENA_MIN = 1 << 18  # bytes values at least this long go through the arena (src/host/arena.ts)
ARENA_KEEP = 16 << 20  # an arena file larger than this is truncated once all its values are read
SPLIT_MIN = 16384  # bytes at least this long become a part of their own (written, never copied)
_u32 = struct.Struct("<I")
_i64 = struct.Struct("<q")
_f64 = struct.Struct("<d")
_AT = struct.Struct("<qI")  # where a value is in the arena: offset, length
_INT_FRAME = struct.Struct("<IBIBq")  # a frame holding a safe int: the common reply, packed at once
_NONE_FRAME = struct.Struct("<IBIB")

loads = marshal.loads


class Arena:
    """One arena file (src/host/arena.ts explains the scheme). Writing: put() appends a value at
    `end`; once the reader says it has read up to `end`, writing starts again at offset 0 (after
    truncating the file if it grew past ARENA_KEEP). Reading: take() reads a value and moves
    `read_to` past it; the channel reports it back to the writer while `unreported`."""

    __slots__ = ("fd", "end", "size", "read_to", "unreported")

    def __init__(self, fd):
        self.fd = fd
        self.end = self.size = self.read_to = 0
        self.unreported = False

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
        return at

    def rewind(self, to):
        """Forgets what was put from offset `to` on (it will never be sent)."""
        self.end = min(self.end, to)

    def read_up_to(self, offset):
        """The reader has read everything before `offset`."""
        if offset >= self.end:
            self.end = 0
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
        self.read_to = at + n
        self.unreported = True
        return data


arena_out = None  # to the host (an Arena), when the host passed arena files
arena_in = None  # from the host


def restore(v):
    """v with the host's placeholders replaced by what they stand for: bytes in the arena, or a
    date (an aware UTC datetime). Containers are rebuilt; placeholders only ever sit inside them."""
    t = type(v)
    if t is tuple:
        if v and v[0] is Ellipsis:
            return _placeheld(v)
        return tuple(restore(x) for x in v)
    if t is list:
        return [restore(x) for x in v]
    if t is dict:
        return {restore(k): restore(x) for k, x in v.items()}
    if t is set:
        return {restore(x) for x in v}
    if t is frozenset:
        return frozenset(restore(x) for x in v)
    return v


def _placeheld(p):
    if p[1] == PLACEHOLDER_ARENA_BYTES:
        if arena_in is None:
            raise ValueError("host protocol: a value in the arena, but there is none")
        return arena_in.take(p[2], p[3])
    if p[1] == PLACEHOLDER_DATE:
        import datetime

        return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=p[2])
    raise ValueError("host protocol: unknown placeholder %r" % (p[1],))


class _Writer:
    __slots__ = ("parts", "buf")

    def __init__(self, kind, cid):
        self.parts = []
        self.buf = bytearray(HEAD.pack(0, kind, cid))  # the length is filled in by frame()

    def blob(self, b):
        self.buf += _u32.pack(len(b))
        if len(b) < SPLIT_MIN:
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


def type_name(v):
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
        at = arena_out.put(v) if arena_out is not None and len(v) >= ARENA_MIN else -1
        if at >= 0:
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
        raise TypeError("cannot send a %s to JavaScript (convert it to a supported type first)" % type_name(v))


def _encode_dated(w, v):
    # datetime and decimal values can only exist once their modules are loaded: looked up in
    # sys.modules, never imported here.
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


NO_VALUE = object()


def frame(kind, cid, value=NO_VALUE):
    """The parts of one frame to the host: header, then the encoded value (if any). Raises
    TypeError for a value that cannot be sent, leaving nothing behind in the arena."""
    t = type(value)
    if t is int and -SAFE <= value <= SAFE:
        return [_INT_FRAME.pack(14, kind, cid, INT, value)]
    if value is None:
        return [_NONE_FRAME.pack(6, kind, cid, NONE)]
    w = _Writer(kind, cid)
    if value is not NO_VALUE:
        start = arena_out.end if arena_out is not None else 0
        try:
            _encode(w, value)
        except BaseException:
            if arena_out is not None:
                arena_out.rewind(start)  # written but never to be sent
            raise
    return w.frame()
