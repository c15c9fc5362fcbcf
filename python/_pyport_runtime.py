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


def patch_venv(builder_class):
    """A venv made with copies gets the runtime's libpython beside its copied interpreter.

    The interpreter of a system-libc runtime finds libpython through its RUNPATH
    ``$ORIGIN/../lib``; copied into ``<venv>/bin`` that is ``<venv>/lib``. (A bundled-libc
    runtime's interpreter is a launcher, which finds the runtime through pyvenv.cfg's home.)
    """
    setup_python = builder_class.setup_python

    def setup_python_and_libpython(self, context):
        setup_python(self, context)
        if self.symlinks or os.name != "posix":
            return
        import glob
        import json
        import shutil

        root = os.path.dirname(os.path.dirname(os.path.realpath(context.executable)))
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
