# Starts pyport's host worker: python -I host_boot.py CACHE_DIR VERSION WORKER_ARGS...
# Runs host_codec.py, host_channel.py and host_worker.py (next to this file) from bytecode in
# pyport's cache; host_cache.py explains the cache and fills it on a miss. Python compiles a
# script on every start, so this one is kept small (a long one costs ~0.3 ms per worker start).
import marshal
import os
import sys

SOURCES = ("host_codec.py", "host_channel.py", "host_worker.py")


def boot():
    here = __file__.rpartition("/")[0]
    server = sys.argv[3] == "--fork-server"  # host_forkserver.py: forks workers on request
    sources = SOURCES + ("host_forkserver.py",) if server else SOURCES
    stamps = []
    for name in sources:
        st = os.stat(here + "/" + name)
        stamps.append("%d-%d-%d-%d" % (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns // 1000000))
    cached = "%s/%s-%s-%s.bin" % (sys.argv[1], sys.argv[2], "-".join(stamps), sys.implementation.cache_tag)
    try:
        with open(cached, "rb") as f:
            codes = marshal.loads(f.read())  # one read: marshal.load(f) reads in small pieces
    except Exception:  # noqa: BLE001 - missing or bad: compiled again below
        codes = None
    if type(codes) is not tuple or len(codes) != len(sources):
        cache = {"__name__": "host_cache"}
        with open(here + "/host_cache.py", "rb") as f:
            exec(compile(f.read(), here + "/host_cache.py", "exec"), cache)
        codes = cache["compile_and_store"](here, sources, cached)
    # host_codec.py and host_channel.py are modules; the worker runs as a namespace, so nothing
    # named like pyport's files can be imported by, or shadow, the user's code.
    for name, code in zip(("_pyport_host_codec", "_pyport_host_channel"), codes):
        module = sys.modules[name] = type(sys)(name)
        module.__file__ = code.co_filename
        exec(code, module.__dict__)
    worker_code = codes[2]
    namespace = {"__name__": "host_worker", "__file__": worker_code.co_filename, "__builtins__": __builtins__}
    exec(worker_code, namespace)
    if server:
        server_code = codes[3]
        names = {"__name__": "host_forkserver", "__file__": server_code.co_filename, "__builtins__": __builtins__}
        names.update(worker_main=namespace["main"], install_host_module=namespace["install_host_module"])
        exec(server_code, names)
        return names["serve"](sys.argv[4:])
    return namespace["main"](sys.argv[3:])


if __name__ == "__main__":
    sys.exit(boot())
