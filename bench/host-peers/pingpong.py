"""The physical floor: one byte in, one byte out, over a pipe."""
import os

while True:
    b = os.read(0, 1)
    if not b:
        break
    os.write(1, b)
