"""Installed by pyport into portable runtimes: adapts the runtime to the machine it runs on.

Imported lazily by ``ssl``, ``venv`` and ``curses`` (never at start-up), so it costs nothing to
programs that use none of them.
"""
import os
import sys

# CA bundles by distribution, in the order they are tried when neither SSL_CERT_FILE nor
# SSL_CERT_DIR is set and OpenSSL's compiled-in default locations do not exist on this machine.
CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, CentOS, Fedora (legacy path)
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # RHEL, CentOS, Fedora
    "/etc/ssl/ca-bundle.pem",  # openSUSE, SLES
    "/etc/ssl/cert.pem",  # Alpine, macOS, OpenBSD
    "/usr/local/share/certs/ca-root-nss.crt",  # FreeBSD
)
CA_DIRS = ("/etc/ssl/certs", "/etc/pki/tls/certs", "/system/etc/security/cacerts")


def runtime_prefix():
    return sys.base_prefix


def ca_location():
    """(cafile, capath) to load in addition to OpenSSL's defaults, or None when they suffice."""
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        return None  # OpenSSL honours these itself
    import _ssl

    _, cafile, _, capath = _ssl.get_default_verify_paths()
    if (cafile and os.path.isfile(cafile)) or (capath and os.path.isdir(capath) and os.listdir(capath)):
        return None
    bundled = os.path.join(runtime_prefix(), "ssl", "cert.pem")
    for candidate in CA_FILES + (bundled,):
        if os.path.isfile(candidate):
            return (candidate, None)
    for candidate in CA_DIRS:
        if os.path.isdir(candidate) and os.listdir(candidate):
            return (None, candidate)
    return None


def patch_ssl(ssl_module):
    """Makes SSLContext.set_default_verify_paths also load this machine's CA bundle."""
    context_class = ssl_module.SSLContext
    original = context_class.set_default_verify_paths

    def set_default_verify_paths(self):
        original(self)
        location = ca_location()
        if location is not None:
            self.load_verify_locations(cafile=location[0], capath=location[1])

    context_class.set_default_verify_paths = set_default_verify_paths


def add_terminfo():
    """Appends the runtime's terminfo database to TERMINFO_DIRS (the host's entries win)."""
    own = os.path.join(runtime_prefix(), "share", "terminfo")
    if not os.path.isdir(own):
        return
    current = os.environ.get("TERMINFO_DIRS")
    entries = current.split(":") if current else [""]  # "" stands for ncurses' compiled default
    if own not in entries:
        os.environ["TERMINFO_DIRS"] = ":".join(entries + [own])


def running_runtime():
    """The root of the runtime whose interpreter this process runs on, or None.

    That is the directory above the libpython in use (shared libpython), above the bundled
    loader in use (bundled libc: the loader is the process's executable), else above the
    executable itself.
    """
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(None, 5)
                if len(fields) == 6 and os.path.basename(fields[5].strip()).startswith("libpython"):
                    return os.path.dirname(os.path.dirname(fields[5].strip()))
        return os.path.dirname(os.path.dirname(os.path.realpath("/proc/self/exe")))
    except OSError:
        return None


def patch_venv(builder_class):
    """A venv's interpreter finds the libpython (and, bundled libc, the loader) it needs.

    The interpreter of a system-libc runtime finds libpython through its RUNPATH
    ``$ORIGIN/../lib``. Copied into ``<venv>/bin`` (``--copies``) that is ``<venv>/lib``, so the
    runtime's libpython is copied there. (A bundled-libc runtime's interpreter is a launcher,
    which finds the runtime through pyvenv.cfg's home.)

    An interpreter file copied out of its runtime alone starts only because LD_LIBRARY_PATH
    names the runtime's ``lib/``; a venv of links to that copy would not start without it. Such
    a venv's interpreter is the runtime's own (the one this process runs on: running_runtime),
    while its pyvenv.cfg home stays the copy's directory.
    """
    setup_python = builder_class.setup_python

    def setup_python_and_libpython(self, context):
        if os.name != "posix":
            return setup_python(self, context)
        executable = context.executable
        root = os.path.dirname(os.path.dirname(os.path.realpath(executable)))
        owner = running_runtime()
        if owner and os.path.realpath(owner) != root and os.path.isfile(os.path.join(owner, "PYPORT.json")):
            own = os.path.join(owner, "bin", os.path.basename(executable))
            if os.path.exists(own):
                context.executable, root = own, owner
        try:
            setup_python(self, context)
        finally:
            context.executable = executable
        if self.symlinks:
            return
        import glob
        import json
        import shutil

        try:
            with open(os.path.join(root, "PYPORT.json")) as f:
                mode = json.load(f).get("libc", {}).get("mode")
        except (OSError, ValueError):
            return
        if mode != "system":
            return
        dest = os.path.join(context.env_dir, "lib")
        for lib in glob.glob(os.path.join(root, "lib", "libpython*.so*")):
            shutil.copy2(lib, os.path.join(dest, os.path.basename(lib)))

    builder_class.setup_python = setup_python_and_libpython
