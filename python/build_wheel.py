"""Builds a project's wheel by calling its PEP 517 backend directly.

Usage: python -s build_wheel.py BACKEND OUT_DIR [BACKEND_PATH...]   (cwd: the project)

What `pip wheel --no-deps --no-build-isolation` does once the build requirements are importable
(PYTHONPATH names them), without pip's start-up and its separate metadata step. Exit status 3
means the backend asks for more build requirements than are importable: the caller falls back
to pip. Works on Python 3.7+.
"""
import importlib
import os
import re
import sys


def missing(requirements):
    try:
        from importlib.metadata import PackageNotFoundError, distribution
    except ImportError:  # Python 3.7: let pip decide
        return list(requirements)
    out = []
    for req in requirements:
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        try:
            distribution(name.group(1) if name else req)
        except PackageNotFoundError:
            out.append(req)
    return out


def main():
    backend_name, out_dir = sys.argv[1], sys.argv[2]
    for extra in reversed(sys.argv[3:]):
        sys.path.insert(0, os.path.abspath(extra))
    module, _, attrs = backend_name.partition(":")
    backend = importlib.import_module(module.strip())
    for attr in filter(None, attrs.strip().split(".")):
        backend = getattr(backend, attr)
    hook = getattr(backend, "get_requires_for_build_wheel", None)
    lacking = missing(hook() if hook else [])
    if lacking:
        sys.stderr.write("build_wheel: the backend also needs %s\n" % ", ".join(lacking))
        sys.exit(3)
    os.makedirs(out_dir, exist_ok=True)
    name = backend.build_wheel(os.path.abspath(out_dir))
    sys.stderr.write("build_wheel: built %s\n" % name)


if __name__ == "__main__":
    main()
