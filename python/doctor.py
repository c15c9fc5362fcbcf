"""pyport runtime doctor: checks that a runtime works on this machine. Prints JSON.

Usage: python3 doctor.py [BUILD_PREFIX]
Each check is {"name", "status": "ok"|"warn"|"fail", "detail"}. Runs on CPython 3.8+.
"""
import json
import os
import subprocess
import sys
import tempfile

checks = []
BUILD_PREFIX = sys.argv[1] if len(sys.argv) > 1 else None


def check(name):
    def wrap(fn):
        try:
            result = fn()
            status, detail = result if isinstance(result, tuple) else ("ok", result or "")
        except Exception as exc:  # a failing check must not stop the others
            status, detail = "fail", "%s: %s" % (type(exc).__name__, exc)
        checks.append({"name": name, "status": status, "detail": str(detail)})
        return fn

    return wrap


@check("compression")
def _():
    import bz2, lzma, zlib

    data = b"pyport" * 1000
    for mod in (zlib, bz2, lzma):
        assert mod.decompress(mod.compress(data)) == data, mod.__name__
    return "zlib %s, bz2, lzma" % zlib.ZLIB_RUNTIME_VERSION


@check("ctypes callbacks")
def _():
    import ctypes

    values = (ctypes.c_int * 5)(5, 1, 4, 2, 3)
    cmp = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    libc = ctypes.CDLL(None)
    libc.qsort(values, 5, ctypes.sizeof(ctypes.c_int), cmp(lambda a, b: a[0] - b[0]))
    assert list(values) == [1, 2, 3, 4, 5], list(values)
    return "qsort with a Python comparator"


@check("hashlib")
def _():
    import hashlib

    for name in ("md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b"):
        hashlib.new(name, b"x").hexdigest()
    return "md5 sha1 sha256 sha512 sha3_256 blake2b"


@check("sqlite3")
def _():
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body)")
    db.execute("INSERT INTO t VALUES ('portable python runtime')")
    assert db.execute("SELECT count(*) FROM t WHERE t MATCH 'runtime'").fetchone()[0] == 1
    db.execute("CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)")
    return "SQLite %s with FTS5 and R*Tree" % sqlite3.sqlite_version


@check("ssl")
def _():
    import ssl

    ctx = ssl.create_default_context()
    stats = ctx.cert_store_stats()
    paths = ssl.get_default_verify_paths()
    if stats["x509_ca"] == 0 and not (paths.capath and os.path.isdir(paths.capath) and os.listdir(paths.capath)):
        return ("warn", "%s works, but this machine has no CA certificates (set SSL_CERT_FILE)" % ssl.OPENSSL_VERSION)
    return "%s, %d CA certificates" % (ssl.OPENSSL_VERSION, stats["x509_ca"])


@check("curses")
def _():
    import curses

    with tempfile.TemporaryFile() as out:  # not /dev/null: minimal roots may have no /dev
        curses.setupterm("xterm", out.fileno())
        assert curses.tigetstr("clear"), "no 'clear' capability for xterm"
    return "terminfo for xterm found"


@check("readline")
def _():
    try:
        import readline
    except ImportError:
        # The default profile leaves out a readline module that links GNU readline (GPL).
        manifest = os.path.join(sys.prefix, "PYPORT.json")
        if os.path.exists(manifest):
            with open(manifest) as f:
                dropped = json.load(f).get("dropped", {})
            if any(k.startswith("readline module") for k in dropped):
                return "left out by the profile (GNU readline is GPL-3.0-or-later; --profile full keeps it)"
        raise
    return getattr(readline, "_READLINE_LIBRARY_VERSION", "") or "imported"


@check("subprocess of sys.executable")
def _():
    out = subprocess.run([sys.executable, "-c", "import sys; print(sys.prefix)"], stdout=subprocess.PIPE, check=True)
    child = out.stdout.decode().strip()
    assert os.path.realpath(child) == os.path.realpath(sys.prefix), "child prefix %s != %s" % (child, sys.prefix)
    return sys.executable


@check("venv")
def _():
    with tempfile.TemporaryDirectory() as tmp:
        env_dir = os.path.join(tmp, "venv")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", env_dir], check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = subprocess.run([os.path.join(env_dir, "bin", "python"), "-c", "import sys; print(sys.prefix != sys.base_prefix)"], stdout=subprocess.PIPE, check=True)
        assert out.stdout.strip() == b"True", out.stdout
    return "created and ran a venv"


@check("pip")
def _():
    import importlib.util

    if importlib.util.find_spec("pip") is None:
        return ("warn", "pip is not installed in this runtime")
    out = subprocess.run([sys.executable, "-m", "pip", "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True)
    return out.stdout.decode().split(" from ")[0]


@check("build paths")
def _():
    import sysconfig

    prefix = os.path.realpath(sys.base_prefix)
    bad = []
    for key in ("INCLUDEPY", "LIBPL", "LIBDEST", "BINDIR", "LIBDIR", "CONFINCLUDEPY"):
        value = sysconfig.get_config_var(key)
        if isinstance(value, str) and value and not os.path.realpath(value).startswith(prefix):
            bad.append("%s=%s" % (key, value))
    if BUILD_PREFIX and BUILD_PREFIX not in ("/usr", "/usr/local", "/"):
        for key, value in sysconfig.get_config_vars().items():
            if isinstance(value, str) and BUILD_PREFIX in value:
                bad.append("%s mentions %s" % (key, BUILD_PREFIX))
    for name, value in sysconfig.get_paths().items():
        if not os.path.realpath(value).startswith(prefix):
            bad.append("path %s=%s" % (name, value))
    if bad:
        return ("fail", "; ".join(sorted(set(bad))[:6]))
    return "sysconfig points into %s" % prefix


sys.stdout.write(json.dumps({"python": sys.version.split()[0], "prefix": sys.prefix, "checks": checks}))
