"""pyport interpreter probe: prints one JSON object describing this interpreter.

Runs on CPython 3.6+ with -I -S (no site, no user paths); reads only, writes nothing.
"""
import json
import os
import platform
import sys
import sysconfig


def module_exists(name):
    try:
        import importlib.util

        return importlib.util.find_spec(name) is not None
    except Exception:
        return False


def ensurepip_state():
    if not module_exists("ensurepip"):
        return {"present": False, "wheels": False}
    try:
        import ensurepip

        if hasattr(ensurepip, "_get_packages"):
            return {"present": True, "wheels": bool(ensurepip._get_packages())}
        bundled = os.path.join(os.path.dirname(ensurepip.__file__), "_bundled")
        return {"present": True, "wheels": os.path.isdir(bundled) and bool(os.listdir(bundled))}
    except Exception as exc:  # Debian's ensurepip may raise when its wheel package is missing
        return {"present": True, "wheels": False, "error": str(exc)}


def sysconfigdata_name():
    try:
        return sysconfig._get_sysconfigdata_name()
    except Exception:
        return None


VARS = [
    "Py_ENABLE_SHARED", "LDLIBRARY", "INSTSONAME", "LIBDIR", "LIBPL", "MULTIARCH", "SOABI",
    "EXT_SUFFIX", "CC", "CXX", "LDSHARED", "prefix", "exec_prefix", "INCLUDEPY", "CONFINCLUDEPY",
    "BINDIR", "LIBDEST", "VERSION", "abiflags", "Py_GIL_DISABLED", "LIBRARY", "abs_builddir", "abs_srcdir",
]

paths = sysconfig.get_paths()
info = {
    "schema": 1,
    "implementation": sys.implementation.name,
    "version": "%d.%d.%d" % sys.version_info[:3],
    "versionFull": sys.version,
    "major": sys.version_info[0],
    "minor": sys.version_info[1],
    "executable": sys.executable,
    "realExecutable": os.path.realpath(sys.executable),
    "prefix": sys.prefix,
    "basePrefix": getattr(sys, "base_prefix", sys.prefix),
    "execPrefix": sys.exec_prefix,
    "platlibdir": getattr(sys, "platlibdir", "lib"),
    "abiflags": getattr(sys, "abiflags", ""),
    "platform": sysconfig.get_platform(),
    "machine": platform.machine(),
    "byteorder": sys.byteorder,
    "pointerBits": 64 if sys.maxsize > 2**32 else 32,
    "libc": list(platform.libc_ver()),
    "paths": paths,
    "vars": {k: sysconfig.get_config_var(k) for k in VARS},
    "sysconfigdata": sysconfigdata_name(),
    "stdlibLicense": os.path.join(paths["stdlib"], "LICENSE.txt"),
    "ensurepip": ensurepip_state(),
    "venv": module_exists("venv"),
    "pip": module_exists("pip"),
    "sysPath": sys.path,
}
sys.stdout.write(json.dumps(info))
