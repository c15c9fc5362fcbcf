"""Installs one wheel into the running interpreter's scheme, without its dependencies.

Usage: python -I install_wheel.py WHEEL

What `pip install --no-deps --no-compile WHEEL` does for a project's own wheel, without pip's
start-up (most of a warm rebuild): the wheel's RECORD hashes are checked, members go to purelib or
platlib (Root-Is-Purelib) and `<name>.data/<key>/` to the scheme's paths, console and GUI scripts
are written, and RECORD, INSTALLER and REQUESTED are written. A member whose path is absolute or
climbs out with '..' is refused before anything is written. An earlier install of the same
wheel is removed first, so a cold build (pip installed the project with its dependencies) and a
warm one give the same files. Files are written as new files (unlink first), never through an
existing file's inode. Works on Python 3.7+.
"""
import base64
import csv
import hashlib
import io
import os
import shutil
import sys
import sysconfig
import zipfile


def fail(message):
    sys.stderr.write("install_wheel: %s\n" % message)
    sys.exit(1)


def digest(data, algorithm="sha256"):
    raw = hashlib.new(algorithm, data).digest()
    return algorithm + "=" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def safe_join(root, rel):
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in ("", ".", ".."):
        fail("refusing the member %r: not a plain relative path" % rel)
    return os.path.join(root, *parts)


def write_new(path, data, executable):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.unlink(path)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o755 if executable else 0o644)


SCRIPT = """#!%s
# -*- coding: utf-8 -*-
import re
import sys
from %s import %s
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(%s())
"""


def entry_scripts(text):
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section not in ("console_scripts", "gui_scripts") or "=" not in line:
            continue
        name, target = (x.strip() for x in line.split("=", 1))
        target = target.split("[")[0].strip()
        module, _, attr = target.partition(":")
        if not attr:
            continue
        first = attr.split(".")[0]
        yield name, module.strip(), first, attr.strip()


def remove_installed(root, dist_info):
    """Removes an earlier install of this wheel (pip's, in a cold build): its RECORD's files
    inside the runtime, then its .dist-info."""
    info = os.path.join(root, dist_info)
    if not os.path.isdir(info):
        return
    prefix = os.path.normpath(sys.prefix) + os.sep
    record = os.path.join(info, "RECORD")
    if os.path.exists(record):
        with open(record, newline="") as f:
            for row in csv.reader(f):
                path = os.path.normpath(os.path.join(root, row[0])) if row else ""
                if path.startswith(prefix) and (os.path.isfile(path) or os.path.islink(path)):
                    os.unlink(path)
    shutil.rmtree(info)


def main():
    wheel = sys.argv[1]
    paths = sysconfig.get_paths()
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
        infos = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/WHEEL")]
        if len(infos) != 1:
            fail("%s: no single *.dist-info/WHEEL" % wheel)
        dist_info = infos[0].split("/")[0]
        dist = dist_info[: -len(".dist-info")].rsplit("-", 1)[0]
        meta = z.read(infos[0]).decode("utf-8")
        if not any(l.strip().startswith("Wheel-Version: 1.") for l in meta.splitlines()):
            fail("%s: not a version 1 wheel" % wheel)
        purelib = "Root-Is-Purelib: true" in meta.replace("True", "true")
        root = paths["purelib"] if purelib else paths["platlib"]
        record_name = dist_info + "/RECORD"
        expected = {}
        for row in csv.reader(io.StringIO(z.read(record_name).decode("utf-8"))):
            if row and row[1]:
                expected[row[0]] = row[1]
        data_dir = dist_info[: -len(".dist-info")] + ".data/"
        targets = {
            "purelib": paths["purelib"],
            "platlib": paths["platlib"],
            "scripts": paths["scripts"],
            "data": paths["data"],
            "headers": os.path.join(paths["include"], dist),
        }
        # Every destination first: a bad member is refused before anything is written.
        plan = []
        for n in names:
            if n == record_name:
                continue
            if n.startswith(data_dir):
                key, _, rest = n[len(data_dir):].partition("/")
                if key not in targets:
                    fail("%s: unknown data directory %r" % (wheel, key))
                plan.append((n, safe_join(targets[key], rest), key == "scripts"))
            else:
                plan.append((n, safe_join(root, n), False))
        remove_installed(root, dist_info)
        installed = []
        for n, dest, script in plan:
            data = z.read(n)
            if n in expected and expected[n] != digest(data, expected[n].split("=")[0]):
                fail("%s: %s does not match its RECORD hash" % (wheel, n))
            mode = (z.getinfo(n).external_attr >> 16) & 0o777
            if script and data.startswith(b"#!python"):
                data = ("#!" + sys.executable).encode() + data[len(b"#!python"):]
            write_new(dest, data, script or bool(mode & 0o111))
            installed.append((dest, data))
        ep = dist_info + "/entry_points.txt"
        if ep in names:
            for name, module, first, attr in entry_scripts(z.read(ep).decode("utf-8")):
                code = (SCRIPT % (sys.executable, module, first, attr)).encode()
                dest = safe_join(paths["scripts"], name)
                write_new(dest, code, True)
                installed.append((dest, code))
    info_dir = os.path.join(root, dist_info)
    for extra, data in (("INSTALLER", b"pyport\n"), ("REQUESTED", b"")):
        dest = os.path.join(info_dir, extra)
        write_new(dest, data, False)
        installed.append((dest, data))
    rows = sorted(
        (os.path.relpath(dest, root).replace(os.sep, "/"), digest(data), str(len(data)))
        for dest, data in installed
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(rows)
    writer.writerow([dist_info + "/RECORD", "", ""])
    write_new(os.path.join(info_dir, "RECORD"), out.getvalue().encode(), False)


if __name__ == "__main__":
    main()
