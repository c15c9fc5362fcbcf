"""Compiles directories and files to .pyc that record paths relative to ROOT (so the name of the
directory a build ran in never reaches the bytecode). Works on Python 3.7+ (compileall's -s/-p
options only exist from 3.9).

Usage: compile_tree.py ROOT MODE OPTIMIZE LEGACY EXCLUDE_REGEX PATH...
  MODE: timestamp | checked-hash | unchecked-hash;  LEGACY: 1 writes foo.pyc beside foo.py
"""
import compileall
import importlib.util
import os
import py_compile
import re
import sys


class Skip:
    """compileall's `rx`: a file is skipped when it matches EXCLUDE, or when its .pyc is already
    hash-based bytecode of this source in this mode (compileall itself only recognises up-to-date
    timestamp .pyc files; a hash-based one would be compiled again every time)."""

    def __init__(self, exclude, flags, optimize, legacy):
        self.exclude = re.compile(exclude) if exclude else None
        self.flags, self.optimize, self.legacy = flags, optimize, legacy

    def search(self, fullname):
        if self.exclude is not None and self.exclude.search(fullname):
            return True
        if self.flags is None or not fullname.endswith(".py"):
            return False
        if self.legacy:
            cfile = fullname + "c"
        else:
            opt = self.optimize if self.optimize else ""
            cfile = importlib.util.cache_from_source(fullname, optimization=opt)
        try:
            with open(cfile, "rb") as f:
                header = f.read(16)
            with open(fullname, "rb") as f:
                source = f.read()
        except OSError:
            return False
        return (
            header[:4] == importlib.util.MAGIC_NUMBER
            and int.from_bytes(header[4:8], "little") == self.flags
            and header[8:16] == importlib.util.source_hash(source)
        )


# The flags word of hash-based .pyc files (PEP 552): bit 0 hash-based, bit 1 check the source.
HASH_FLAGS = {"checked-hash": 0b11, "unchecked-hash": 0b01}


def main():
    root, mode, optimize, legacy, exclude = sys.argv[1:6]
    invalidation = py_compile.PycInvalidationMode[mode.upper().replace("-", "_")]
    rx = Skip(exclude, HASH_FLAGS.get(mode), int(optimize), legacy == "1")
    common = dict(force=True, quiet=1, legacy=legacy == "1", optimize=int(optimize), invalidation_mode=invalidation)
    ok = True
    for target in sys.argv[6:]:
        rel = os.path.relpath(target, root)
        if os.path.isdir(target):
            ok = compileall.compile_dir(target, ddir=rel, rx=rx, workers=0, **common) and ok
        else:
            ok = compileall.compile_file(target, ddir=os.path.dirname(rel), rx=rx, **common) and ok
    return 0 if ok else 1


# compileall's worker processes may re-import this file (forkserver): only run as a script.
if __name__ == "__main__":
    sys.exit(main())
