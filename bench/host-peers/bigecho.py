"""The transport floor for large values: the way pyport's worker moves long bytes (its arena,
src/host/arena.ts) with no protocol. For each byte on fd 3, N bytes are read from the file on fd
5 into a new bytes object (as any decoder must make one) and written to the file on fd 6, then a
byte goes back on fd 4."""
import os
import sys

n = int(sys.argv[1])
while os.read(3, 1):
    os.pwrite(6, os.pread(5, n, 0), 0)
    os.write(4, b"y")
