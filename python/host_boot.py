"""Starts host_worker.py from bytecode cached in pyport's cache, so a worker does not compile it
on every start (about 5 ms). A script's bytecode is never cached by Python itself.

Usage: python -I host_boot.py WORKER_PY CACHE_PREFIX WORKER_ARGS...
CACHE_PREFIX names this version of WORKER_PY (the host derives it from pyport's version and the
file's device, inode, size and mtime), so a cached file is for this source; "-<cache tag>.bin"
is appended (marshal data is per Python version). A cache that is missing, unreadable, corrupt
or read-only only means compiling again.
"""
import marshal
import os
import sys


def load(source, prefix):
    cached = "%s-%s.bin" % (prefix, sys.implementation.cache_tag)
    try:
        with open(cached, "rb") as f:
            return marshal.load(f)
    except Exception:  # noqa: BLE001 - missing or bad cache: compile instead
        pass
    with open(source, "rb") as f:
        code = compile(f.read(), source, "exec")
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        tmp = "%s.%d.tmp" % (cached, os.getpid())
        with open(tmp, "wb") as f:
            marshal.dump(code, f)
        os.replace(tmp, cached)
    except OSError:
        pass
    return code


def boot():
    source, prefix = sys.argv[1], sys.argv[2]
    code = load(source, prefix)
    namespace = {"__name__": "host_worker", "__file__": source, "__builtins__": __builtins__}
    exec(code, namespace)
    return namespace["main"](sys.argv[3:])


if __name__ == "__main__":
    sys.exit(boot())
