"""Starts the host worker (host_codec.py, then host_worker.py, both next to this file) from
bytecode cached in pyport's cache, so a worker does not compile them on every start (about 5 ms).
A script's bytecode is never cached by Python itself.

Usage: python -I host_boot.py CACHE_PREFIX WORKER_ARGS...
CACHE_PREFIX names this version of the sources (the host derives it from pyport's version and the
files' device, inode, size and mtime), so a cached file is for these sources; "-<cache tag>.bin"
is appended (marshal data is per Python version). A cache that is missing, unreadable, corrupt
or read-only only means compiling again.

The codec becomes the module _pyport_host_codec; the worker runs as a namespace, not a module, so
nothing named like pyport's files can be imported by, or shadow, the user's code.
"""
import marshal
import os
import sys

SOURCES = ("host_codec.py", "host_worker.py")


def load(here, prefix):
    cached = "%s-%s.bin" % (prefix, sys.implementation.cache_tag)
    try:
        with open(cached, "rb") as f:
            codes = marshal.loads(f.read())  # one read: marshal.load(f) reads in small pieces
        if type(codes) is tuple and len(codes) == len(SOURCES):
            return codes
    except Exception:  # noqa: BLE001 - missing or bad cache: compile instead
        pass
    codes = []
    for name in SOURCES:
        path = os.path.join(here, name)
        with open(path, "rb") as f:
            codes.append(compile(f.read(), path, "exec"))
    codes = tuple(codes)
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        tmp = "%s.%d.tmp" % (cached, os.getpid())
        with open(tmp, "wb") as f:
            marshal.dump(codes, f)
        os.replace(tmp, cached)
    except OSError:
        pass
    return codes


def boot():
    here = os.path.dirname(os.path.abspath(__file__))
    codec_code, worker_code = load(here, sys.argv[1])
    codec = type(sys)("_pyport_host_codec")
    codec.__file__ = codec_code.co_filename
    exec(codec_code, codec.__dict__)
    sys.modules[codec.__name__] = codec
    namespace = {"__name__": "host_worker", "__file__": worker_code.co_filename, "__builtins__": __builtins__}
    exec(worker_code, namespace)
    return namespace["main"](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(boot())
