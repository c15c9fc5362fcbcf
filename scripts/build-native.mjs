// Compiles the native launcher (native/launcher.c) into dist/native/launcher-<arch>.
// A static build needs a C compiler and the static C library (Debian: gcc libc6-dev). Without
// them the build still succeeds; pyport then falls back to POSIX sh launchers and says so.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const out = path.join(root, "dist", "native", `launcher-${process.arch}`);
const cc = process.env.CC ?? "cc";
fs.mkdirSync(path.dirname(out), { recursive: true });
const tmp = `${out}.tmp-${process.pid}`;
try {
  execFileSync(cc, ["-static", "-Os", "-s", "-Wall", "-Werror", "-o", tmp, path.join(root, "native", "launcher.c")], { stdio: ["ignore", "inherit", "inherit"] });
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, out);
} catch (err) {
  fs.rmSync(tmp, { force: true });
  process.stderr.write(`\n*** pyport: the native launcher was not built (${err.message.split("\n")[0]}).\n*** Install a C compiler and static libc (apt-get install gcc libc6-dev); until then\n*** bundled-libc runtimes and bundles start through POSIX sh launchers (slower, need /bin/sh).\n\n`);
}
