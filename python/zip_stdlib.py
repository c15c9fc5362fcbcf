"""Moves the pure-Python standard library into lib/pythonXY.zip as .pyc (run by pyport build).

Usage: python zip_stdlib.py PREFIX OPTIMIZE

CPython puts PREFIX/lib/pythonXY.zip on sys.path before the stdlib directory, so modules load
from the zip. Kept on the filesystem: packages holding anything but Python sources (venv's
scripts, ensurepip's wheels, lib2to3's grammars, ...), lib-dynload, site-packages, config-*,
and os.py (the landmark CPython uses to find its prefix). The zip is deterministic: sorted
entries, fixed timestamps, hash-based .pyc.
"""
import importlib.util
import os
import py_compile
import shutil
import sys
import tempfile
import zipfile

prefix, optimize = sys.argv[1], int(sys.argv[2])
ver = "%d.%d" % sys.version_info[:2]
stdlib = os.path.join(prefix, "lib", "python" + ver)
target = os.path.join(prefix, "lib", "python%d%d.zip" % sys.version_info[:2])
KEEP_DIRS = {"site-packages", "dist-packages", "lib-dynload", "__pycache__", "test", "tests", "idlelib", "tkinter", "turtledemo"}
KEEP_FILES = {"os.py"}


def pure_python(pkg):
    for d, dirs, files in os.walk(pkg):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        if any(not f.endswith(".py") for f in files):
            return False
    return True


moved = []
for name in sorted(os.listdir(stdlib)):
    path = os.path.join(stdlib, name)
    if name in KEEP_FILES or name.startswith("config-") or name in KEEP_DIRS:
        continue
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "__init__.py")) and pure_python(path):
            moved.append(name)
    elif name.endswith(".py"):
        moved.append(name)

tmp = tempfile.mkdtemp()
try:
    entries = []
    for name in moved:
        top = os.path.join(stdlib, name)
        sources = [top] if os.path.isfile(top) else [os.path.join(d, f) for d, ds, fs in os.walk(top) for f in fs if f.endswith(".py")]
        for src in sources:
            rel = os.path.relpath(src, stdlib)
            out = os.path.join(tmp, rel + "c")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            try:
                py_compile.compile(src, cfile=out, dfile=rel, doraise=True, optimize=optimize,
                                   invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            except py_compile.PyCompileError:
                continue  # stays out of the zip (and on disk)
            entries.append((rel.replace(os.sep, "/") + "c", out, src))
    entries.sort()
    with zipfile.ZipFile(target + ".tmp", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for arc, out, _ in entries:
            info = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(out, "rb") as f:
                z.writestr(info, f.read(), compresslevel=9)
    os.replace(target + ".tmp", target)
    for _, _, src in entries:
        os.remove(src)
        cached = importlib.util.cache_from_source(src)
        d = os.path.dirname(cached)
        if os.path.isdir(d):
            stem = os.path.basename(src)[:-3] + "."
            for f in os.listdir(d):
                if f.startswith(stem):
                    os.remove(os.path.join(d, f))
    for d, dirs, files in os.walk(stdlib, topdown=False):  # children before parents
        if not os.listdir(d) and d != stdlib:
            os.rmdir(d)
    print("%d modules zipped into %s" % (len(entries), os.path.relpath(target, prefix)))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
