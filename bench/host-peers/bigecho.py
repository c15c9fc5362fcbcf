"""The transport floor for large values: N bytes in on fd 3, into a reused buffer, copied once
into a bytes object (as any decoder must), and written back on fd 4 — the same kind of
descriptors (socket pairs) and send-buffer tuning as pyport's worker, with no protocol."""
import os
import socket
import sys

n = int(sys.argv[1])
s = socket.socket(fileno=os.dup(4))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
s.close()
buf = bytearray(n)
view = memoryview(buf)
while True:
    got = 0
    while got < n:
        k = os.readv(3, [view[got:]])
        if not k:
            sys.exit(0)
        got += k
    data = bytes(buf)
    sent = 0
    while sent < n:
        sent += os.write(4, memoryview(data)[sent:])
