"""Compiles directories and files to .pyc that record paths relative to ROOT (so the name of the
directory a build ran in never reaches the bytecode). Works on Python 3.7+ (compileall's -s/-p
options only exist from 3.9).

Usage: compile_tree.py ROOT MODE OPTIMIZE LEGACY EXCLUDE_REGEX PATH...
  MODE: timestamp | checked-hash | unchecked-hash;  LEGACY: 1 writes foo.pyc beside foo.py
"""
import compileall
import os
import py_compile
import re
import sys


def main():
    root, mode, optimize, legacy, exclude = sys.argv[1:6]
    invalidation = py_compile.PycInvalidationMode[mode.upper().replace("-", "_")]
    rx = re.compile(exclude) if exclude else None
    common = dict(force=True, quiet=1, legacy=legacy == "1", optimize=int(optimize), invalidation_mode=invalidation)
    ok = True
    for target in sys.argv[6:]:
        rel = os.path.relpath(target, root)
        if os.path.isdir(target):
            ok = compileall.compile_dir(target, ddir=rel, rx=rx, workers=0, **common) and ok
        else:
            ok = compileall.compile_file(target, ddir=os.path.dirname(rel), **common) and ok
    return 0 if ok else 1


# compileall's worker processes may re-import this file (forkserver): only run as a script.
if __name__ == "__main__":
    sys.exit(main())
