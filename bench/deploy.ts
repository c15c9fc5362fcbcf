/**
 * bench/deploy: OCI images of the examples. Image build time from a cold and a warm cache; the
 * hello image's compressed size beside python:3.12-slim's published size (a cited figure, not a
 * download); a code-only rebuild and re-push to a docker-registry on 127.0.0.1 (bytes sent);
 * start-to-first-response of the webapp in a runc container against its bundle run directly,
 * interleaved in one run (only the ratio counts on a shared machine).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { build, type BuildOutput } from "../src/bundle/build.js";
import { push } from "../src/oci/push.js";
import { discoverPythons } from "../src/python/discover.js";
import { median } from "./util.js";

const EXAMPLES = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../examples");
const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
/** python:3.12-slim, linux/amd64, compressed as Docker Hub lists it (cited; about 41 MB in 2024–26). */
const SLIM_MB = 41;

const has = (tool: string) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;
const tmp = (tag: string) => fs.mkdtempSync(path.join(os.tmpdir(), `pyport-bench-deploy-${tag}-`));

function copyExample(name: string): string {
  const dir = path.join(tmp(name), name);
  fs.cpSync(path.join(EXAMPLES, name), dir, {
    recursive: true,
    filter: (s) => path.basename(s) !== "dist",
  });
  return dir;
}

async function imageBuild(project: string, python: string, formats: ("oci" | "dir")[] = ["oci"]) {
  const t = Date.now();
  const r = await build({ projectDir: project, out: tmp("out"), python, formats, libc: "bundled" });
  return { ms: Date.now() - t, outputs: r.outputs };
}

const imageOf = (outputs: BuildOutput[]) => outputs.find((o) => o.format === "oci")!;
const compressed = (o: BuildOutput) => o.image!.layers.reduce((n, l) => n + l.size, 0);

/**
 * Milliseconds from starting `cmd` until GET /health on `port` answers 200. A `detached` command
 * (`runc start`) may exit successfully before the answer; otherwise its exit is a failure.
 */
async function timeToFirstResponse(
  cmd: string,
  args: string[],
  port: number,
  cwd?: string,
  detached = false,
) {
  const t = process.hrtime.bigint();
  const child = spawn(cmd, args, { cwd, stdio: "ignore" });
  try {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return Number(process.hrtime.bigint() - t) / 1e6;
      if (child.exitCode !== null && !(detached && child.exitCode === 0))
        throw new Error(`${cmd} exited with ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    child.kill("SIGKILL");
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("close", r)));
  }
}

async function startRegistry(): Promise<{ address: string; stop: () => void } | undefined> {
  if (!has("docker-registry")) return undefined;
  const dir = tmp("registry");
  const port = 20000 + Math.floor(Math.random() * 20000);
  const config = path.join(dir, "config.yml");
  fs.writeFileSync(
    config,
    `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\nlog:\n  level: error\n`,
  );
  const child = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`http://127.0.0.1:${port}/v2/`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { address: `127.0.0.1:${port}`, stop: () => child.kill("SIGKILL") };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  return undefined;
}

export async function deployBench(): Promise<void> {
  const pythons = await discoverPythons();
  const py =
    pythons.find((p) => p.probe.minor === 12 && p.probe.ensurepip.wheels) ??
    pythons.find((p) => p.probe.ensurepip.wheels);
  if (!py) throw new Error("no interpreter with ensurepip found");
  console.log(`# deploy — Python ${py.probe.version}, libc bundled (FROM scratch images)`);
  process.env.PYPORT_CACHE = tmp("cache");

  const hello = copyExample("hello");
  const cold = await imageBuild(hello, py.path);
  const warm = await imageBuild(hello, py.path);
  const image = imageOf(cold.outputs);
  console.log(
    `hello image build: cold cache ${(cold.ms / 1000).toFixed(1)} s, warm (same inputs) ${(warm.ms / 1000).toFixed(1)} s; same digest: ${imageOf(warm.outputs).image!.digest === image.image!.digest}`,
  );
  const size = compressed(image);
  console.log(
    `hello image: ${mb(size)} compressed (target <= 15 MB) in ${image.image!.layers.map((l) => `${l.group} ${mb(l.size)}`).join(", ")}; python:3.12-slim alone is ~${SLIM_MB} MB compressed (published figure): ${(SLIM_MB / (size / 1e6)).toFixed(1)}x smaller`,
  );

  fs.appendFileSync(path.join(hello, "src/hello/cli.py"), "\n# a code-only change\n");
  const changed = await imageBuild(hello, py.path);
  const changedImage = imageOf(changed.outputs);
  const newLayers = changedImage.image!.layers.filter((l) => !l.cached);
  console.log(
    `code-only rebuild: ${(changed.ms / 1000).toFixed(1)} s (target <= 3 s); new layers: ${newLayers.map((l) => `${l.group} ${mb(l.size)}`).join(", ")}`,
  );

  const registry = await startRegistry();
  if (!registry) console.log("re-push: skipped (docker-registry is not installed)");
  else {
    try {
      const target = `${registry.address}/bench/hello:1`;
      const first = await push({ image: image.path, target, insecure: true });
      const again = await push({ image: changedImage.path, target, insecure: true });
      const layers = new Map(changedImage.image!.layers.map((l) => [l.digest, l.group]));
      const newLayers = again.uploaded.filter((d) => layers.has(d)).map((d) => layers.get(d));
      console.log(
        `push: first ${mb(first.bytesUploaded)} in ${first.uploaded.length} blobs; re-push after the code change ${mb(again.bytesUploaded)}: layer(s) ${newLayers.join(", ")} and ${again.uploaded.length - newLayers.length} small JSON blob(s) (the image config, the SBOM); ${again.existing.length} blob(s) already there`,
      );
    } finally {
      registry.stop();
    }
  }

  if (process.getuid?.() !== 0 || !has("runc") || !has("umoci")) {
    console.log("start-to-first-response: skipped (needs root, runc and umoci)");
    return;
  }
  const web = await imageBuild(copyExample("webapp"), py.path, ["dir", "oci"]);
  const bundleDir = web.outputs.find((o) => o.format === "dir")!.path;
  const rt = path.join(tmp("runc"), "bundle");
  const unpack = spawnSync("umoci", [
    "unpack",
    "--image",
    `${imageOf(web.outputs).path}:1.0.0`,
    rt,
  ]);
  if (unpack.status !== 0) throw new Error(`umoci unpack failed: ${unpack.stderr}`);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const cfgFile = path.join(rt, "config.json");
  const cfg = JSON.parse(fs.readFileSync(cfgFile, "utf8"));
  cfg.process.terminal = false;
  cfg.process.args = ["/app/bin/webapp", "--host", "127.0.0.1", "--port", String(port)];
  cfg.linux.namespaces = cfg.linux.namespaces.filter((n: { type: string }) => n.type !== "network");
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  const ms = (cmd: string, args: string[], cwd?: string) => {
    const t = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { cwd, stdio: "ignore" });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed`);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const direct: number[] = [];
  const container: number[] = [];
  const ratios: number[] = [];
  const fixed: number[] = [];
  const created: number[] = [];
  const started: number[] = [];
  for (let i = 0; i < 7; i++) {
    const id = `pyport-bench-${process.pid}-${i}`;
    const runDirect = () =>
      timeToFirstResponse(path.join(bundleDir, "bin/webapp"), ["--port", String(port)], port);
    const runContainer = async () => {
      try {
        return await timeToFirstResponse("runc", ["run", id], port, rt);
      } finally {
        spawnSync("runc", ["delete", "-f", id]);
      }
    };
    let d: number;
    let c: number;
    if (i % 2) {
      d = await runDirect();
      c = await runContainer();
    } else {
      c = await runContainer();
      d = await runDirect();
    }
    direct.push(d);
    container.push(c);
    ratios.push(c / d);
    // runc's own cost: the same interpreter start (python -c pass) in a container and directly.
    cfg.process.args = ["/app/bin/python3", "-c", "pass"];
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    fixed.push(
      ms("runc", ["run", `${id}-p`], rt) - ms(path.join(bundleDir, "bin/python3"), ["-c", "pass"]),
    );
    spawnSync("runc", ["delete", "-f", `${id}-p`]);
    // The same container made in two steps, as orchestrators do (CRI CreateContainer, then
    // StartContainer): `runc create` sets up namespaces, mounts and cgroups; `runc start` runs it.
    cfg.process.args = ["/app/bin/webapp", "--host", "127.0.0.1", "--port", String(port)];
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    try {
      created.push(ms("runc", ["create", `${id}-c`], rt));
      started.push(await timeToFirstResponse("runc", ["start", `${id}-c`], port, rt, true));
    } finally {
      spawnSync("runc", ["delete", "-f", `${id}-c`]);
    }
  }
  const overhead = median(container) - median(direct);
  console.log(
    `webapp start to first response: container (runc) ${median(container).toFixed(0)} ms, bundle directly ${median(direct).toFixed(0)} ms; ratio ${median(ratios).toFixed(2)}x (target <= 1.1x; median of 7 interleaved pairs). The container adds ${overhead.toFixed(0)} ms, of which runc's fixed cost (python -c pass in runc minus directly) is ${median(fixed).toFixed(0)} ms`,
  );
  console.log(
    `  in two steps: runc create ${median(created).toFixed(0)} ms, then runc start to first response ${median(started).toFixed(0)} ms (${(median(started) / median(direct)).toFixed(2)}x the bundle run directly)`,
  );
}
