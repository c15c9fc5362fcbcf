/** Shared test helpers: real interpreters found at run time, temp dirs, target roots. */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { discoverPythons, type FoundPython } from "../src/python/discover.js";
import { readElfFile } from "../src/elf/file.js";

export const isRoot = process.getuid?.() === 0;

const made: string[] = [];

/** A fresh temp dir, removed when the test file's process exits (PYPORT_KEEP_TEST_DIRS=1 keeps them). */
export function tmpDir(tag: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pyport-test-${tag}-`));
  made.push(dir);
  return dir;
}

process.on("exit", () => {
  if (process.env.PYPORT_KEEP_TEST_DIRS) return;
  // Never recurse into a dir with something still mounted below it (a chroot's /proc).
  const mounts = fs
    .readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "");
  for (const dir of made) {
    if (mounts.some((m) => m === dir || m.startsWith(`${dir}/`))) continue;
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort: a dir a test made read-only or immutable stays
    }
  }
});

const RUN_CACHE_PREFIX = "pyport-run-cache-";

/**
 * One cache for a whole test run (unless PYPORT_CACHE is set by the caller): every file of the
 * run (`node --test` runs each in a child process) shares `<tmp>/pyport-run-cache-<runner pid>`,
 * so a runtime is built once per run, not once per file. It starts empty, so the run never uses
 * the user's cache; caches of earlier runs (their runner gone) are removed here.
 */
export function useTestCache(): string {
  if (process.env.PYPORT_CACHE) return process.env.PYPORT_CACHE;
  const dir = path.join(os.tmpdir(), `${RUN_CACHE_PREFIX}${process.ppid}`);
  if (!fs.existsSync(dir))
    for (const old of fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(RUN_CACHE_PREFIX))) {
      const pid = Number(old.slice(RUN_CACHE_PREFIX.length));
      if (pid > 0 && !isAlive(pid))
        fs.rmSync(path.join(os.tmpdir(), old), { recursive: true, force: true });
    }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.PYPORT_CACHE = dir;
  return dir;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A part of a test that cannot run here: reported by the runner as a skipped subtest, with its reason. */
export async function skipPart(
  t: { test: (name: string, fn: (st: { skip: (m: string) => void }) => void) => Promise<unknown> },
  reason: string,
): Promise<void> {
  await t.test(reason, (st) => st.skip(reason));
}

let found: FoundPython[] | undefined;
async function all(): Promise<FoundPython[]> {
  return (found ??= await discoverPythons());
}

/** Every build with a shared libpython (pyenv-style), 3.8 and later. */
export async function sharedPythons(): Promise<FoundPython[]> {
  const candidates: FoundPython[] = [];
  for (const p of await all()) {
    if (p.probe.major !== 3 || p.probe.minor < 8) continue;
    const { elf } = await readElfFile(p.path);
    if (elf.needed.some((n) => n.startsWith("libpython"))) candidates.push(p);
  }
  return candidates;
}

/** A build with a shared libpython (pyenv-style), preferring the given minor versions. */
export async function sharedPython(
  preferred = ["3.12", "3.11", "3.13", "3.10"],
): Promise<FoundPython | undefined> {
  const candidates = await sharedPythons();
  const rank = (p: FoundPython) => {
    const i = preferred.indexOf(`${p.probe.major}.${p.probe.minor}`);
    return i < 0 ? 99 : i;
  };
  return candidates.sort((a, b) => rank(a) - rank(b))[0];
}

/** A distribution interpreter: static libpython, no RPATH, under /usr (Debian's python3.X). */
export async function distroPython(): Promise<FoundPython | undefined> {
  for (const p of await all()) {
    if (p.probe.prefix !== "/usr" || p.probe.minor < 8) continue;
    const { elf } = await readElfFile(p.path);
    if (!elf.needed.some((n) => n.startsWith("libpython")) && !elf.runpath && !elf.rpath) return p;
  }
  return undefined;
}

export function run(
  file: string,
  args: string[],
  opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {},
) {
  const r = spawnSync(file, args, {
    encoding: "utf8",
    cwd: opts.cwd,
    input: opts.input,
    env: opts.env ?? process.env,
    uid: opts.uid,
    gid: opts.gid,
    timeout: 300_000,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Like `run`, but leaves the event loop free (needed when this process also serves the child). */
export function runAsync(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number } = {},
) {
  return new Promise<ReturnType<typeof run>>((resolve, reject) => {
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      timeout: opts.timeout ?? 300_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export const CLI = path.resolve(
  path.dirname(new URL(import.meta.url).pathname),
  "../src/cli/main.js",
);

/** The repository's root (tests run from dist/test). */
export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
/** The example plugins, and the hostile ones the engine tests use. */
export const PLUGIN_EXAMPLES = path.join(REPO, "examples/plugins");
export const PLUGIN_FIXTURES = path.join(REPO, "test/fixtures/plugins");

export function pyport(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return run(process.execPath, [CLI, ...args], { env });
}

export function pyportAsync(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return runAsync(process.execPath, [CLI, ...args], { env });
}

/** Where target roots are built once and reused across test runs. */
const ROOTS = process.env.PYPORT_TEST_ROOTS ?? "/var/cache/pyport-test-roots";

/** A root holding only busybox-static (with its applets), plus the given runtime copied to /rt. */
export function busyboxRoot(runtime: string): string | undefined {
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((b) => fs.existsSync(b));
  if (!busybox) return undefined;
  const root = tmpDir("busybox");
  for (const d of ["bin", "proc", "tmp", "rt"])
    fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.chmodSync(path.join(root, "tmp"), 0o1777);
  fs.copyFileSync(busybox, path.join(root, "bin", "busybox"));
  fs.chmodSync(path.join(root, "bin", "busybox"), 0o755);
  execFileSync("chroot", [root, "/bin/busybox", "--install", "-s", "/bin"]);
  execFileSync("cp", ["-a", `${runtime}/.`, path.join(root, "rt")]);
  return root;
}

/** Debian bullseye minbase (glibc 2.31), made with debootstrap once and cached. */
export function bullseyeRoot(): string | undefined {
  const root = path.join(ROOTS, "bullseye");
  const marker = path.join(root, ".pyport-root-complete");
  if (fs.existsSync(marker)) return root;
  if (!fs.existsSync("/usr/sbin/debootstrap")) return undefined;
  fs.mkdirSync(ROOTS, { recursive: true });
  const tmp = `${root}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const mirror = process.env.PYPORT_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
  const r = run("debootstrap", ["--variant=minbase", "bullseye", tmp, mirror]);
  if (r.code !== 0) {
    process.stderr.write(
      `debootstrap bullseye failed (${r.stderr.trim().split("\n").slice(-2).join(" ")})\n`,
    );
    fs.rmSync(tmp, { recursive: true, force: true });
    return undefined;
  }
  fs.rmSync(root, { recursive: true, force: true });
  fs.renameSync(tmp, root);
  fs.writeFileSync(marker, "");
  return root;
}

/** Runs `fn` with /proc mounted in `root`, then unmounts it. */
export async function withProc<T>(root: string, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(path.join(root, "proc"), { recursive: true });
  execFileSync("mount", ["-t", "proc", "proc", path.join(root, "proc")]);
  try {
    return await fn();
  } finally {
    execFileSync("umount", ["-l", path.join(root, "proc")]);
  }
}
