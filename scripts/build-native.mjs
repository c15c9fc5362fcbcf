// Compiles the native parts into dist/native/<name>-<arch>:
//   launcher  (native/launcher.c)  the static launcher written into bin/ of runtimes and bundles
//   onefile   (native/onefile.c)   the stub at the head of `--format onefile` executables
//   host      (native/host.c)      a Node addon the host uses to start workers (posix_spawn) and
//                                  to poll for quick replies
// A static build needs a C compiler and the static C library (Debian: gcc libc6-dev); the onefile
// stub also needs static libzstd (libzstd-dev). Without them the build still succeeds: pyport
// falls back to POSIX sh launchers, refuses --format onefile, saying what to install, and the
// host uses Node's spawn and waits for replies in the event loop only.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const cc = process.env.CC ?? "cc";
const targets = [
  { name: "launcher", flags: ["-static", "-Os"], libs: [], without: "bundled-libc runtimes and bundles start through POSIX sh launchers (slower, need /bin/sh)", install: "gcc libc6-dev" },
  { name: "onefile", flags: ["-static", "-O2"], libs: ["-lzstd"], without: "pyport build --format onefile is unavailable", install: "gcc libc6-dev libzstd-dev" },
  { name: "host", suffix: ".node", flags: ["-shared", "-fPIC", "-O2", "-pthread"], libs: [], without: "the host starts workers with Node's spawn (slower) and Python.start's spinUs polls in the worker only", install: "gcc libc6-dev" },
];
for (const t of targets) {
  const out = path.join(root, "dist", "native", `${t.name}-${process.arch}${t.suffix ?? ""}`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    execFileSync(cc, [...t.flags, "-s", "-Wall", "-Werror", "-o", tmp, path.join(root, "native", `${t.name}.c`), ...t.libs], { stdio: ["ignore", "inherit", "inherit"] });
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, out);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    process.stderr.write(`\n*** pyport: native ${t.name} was not built (${err.message.split("\n")[0]}).\n*** Install a C compiler and static libraries (apt-get install ${t.install}); until then\n*** ${t.without}.\n\n`);
  }
}
