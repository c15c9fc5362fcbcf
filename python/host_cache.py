"""The host worker's bytecode cache (host_boot.py runs this file on a miss).

A script's bytecode is never cached by Python itself, and compiling the worker costs about 5 ms,
so host_boot.py loads the worker's sources (SOURCES) from "<CACHE_PREFIX>-<cache tag>.bin" in
pyport's cache: a marshalled tuple of their code objects. CACHE_PREFIX names this version of
the sources (the host derives it from pyport's version and each file's device, inode, size and
mtime: src/host/worker.ts workerCodePrefix), and the cache tag the Python version, since marshal
data is per version. A cache file that is missing, unreadable or corrupt only means compiling
again; one that cannot be written (a read-only cache) only means compiling every time.
"""
import marshal
import os
import sys

SOURCES = ("host_codec.py", "host_channel.py", "host_worker.py")  # in the order host_boot.py runs them


def compile_and_store(here, prefix):
    """The code objects of SOURCES (in `here`), written to the cache for the next start."""
    codes = []
    for name in SOURCES:
        path = os.path.join(here, name)
        with open(path, "rb") as f:
            codes.append(compile(f.read(), path, "exec"))
    codes = tuple(codes)
    cached = "%s-%s.bin" % (prefix, sys.implementation.cache_tag)
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        tmp = "%s.%d.tmp" % (cached, os.getpid())
        with open(tmp, "wb") as f:
            marshal.dump(codes, f)
        os.replace(tmp, cached)  # atomic: a concurrent start reads the old file or the new one
    except OSError:
        pass
    return codes
