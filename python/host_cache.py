"""The host worker's bytecode cache (host_boot.py runs this file on a miss).

A script's bytecode is never cached by Python itself, and compiling the worker costs about 5 ms,
so host_boot.py loads the worker's sources from one file in pyport's cache bucket for the host
(`host-v1`): a marshalled tuple of their code objects. Its name is
"<pyport version>-<device-inode-size-mtime of each source>-<cache tag>.bin": it changes whenever
a source does, and per Python version, since marshal data is per version. Not a content hash:
hashing the sources on every start would cost more than the cache saves. A cache file that is
missing, unreadable or corrupt only means compiling again; one that cannot be written (a
read-only cache) only means compiling every time.
"""
import marshal
import os


def compile_and_store(here, sources, cached):
    """The code objects of `sources` (in `here`), in that order, written to `cached` for the next start."""
    codes = []
    for name in sources:
        path = os.path.join(here, name)
        with open(path, "rb") as f:
            codes.append(compile(f.read(), path, "exec"))
    codes = tuple(codes)
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        tmp = "%s.%d.tmp" % (cached, os.getpid())
        with open(tmp, "wb") as f:
            marshal.dump(codes, f)
        os.replace(tmp, cached)  # atomic: a concurrent start reads the old file or the new one
    except OSError:
        pass
    return codes
