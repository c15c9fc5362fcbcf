/**
 * OCI images, checked with the tools people use: `pyport build --format oci|oci-archive` read by
 * skopeo, unpacked by umoci and run by runc FROM scratch; two builds give one digest; a code-only
 * change makes one new layer; `pyport push` to a real docker-registry on 127.0.0.1, copied back
 * by skopeo with the same digest, and a killed push resumes the layer it was sending.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import {
  CLI,
  pyport,
  pyportAsync,
  REPO,
  run,
  runAsync,
  sharedPython,
  skipPart,
  tmpDir,
  useTestCache,
} from "./helpers.js";
import {
  freePort,
  hasTool,
  startRegistry,
  startStallingProxy,
  unpackForRunc,
  whyNoRunc,
} from "./oci-tools.js";

useTestCache();

interface ImageOutput {
  format: string;
  path: string;
  sha256: string;
  image: {
    digest: string;
    ref: string;
    layers: { group: string; digest: string; size: number; cached: boolean }[];
    sbom: { digest: string; artifactType: string };
  };
}

let python: string | undefined;
before(async () => {
  python = (await sharedPython())?.path;
});

/** A copy of an example project (so tests may change it). */
function copyExample(name: string): string {
  const dir = path.join(tmpDir(`oci-${name}`), name);
  fs.cpSync(path.join(REPO, "examples", name), dir, {
    recursive: true,
    filter: (src) => path.basename(src) !== "dist",
  });
  return dir;
}

function buildImage(project: string, out: string, formats = "oci"): ImageOutput[] {
  const r = pyport([
    "build",
    project,
    "--out",
    out,
    "--format",
    formats,
    "--libc",
    "bundled",
    "--python",
    python!,
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { outputs: ImageOutput[] }).outputs;
}

const hasSkopeo = hasTool("skopeo");

describe("OCI images", { timeout: 900_000 }, () => {
  let project: string;
  let first: ImageOutput;
  let archive: ImageOutput;

  test("hello: an image layout and archive that skopeo reads, with the SBOM as a referrer", async (t) => {
    if (!python) return skipPart(t, "no CPython with a shared libpython found");
    project = copyExample("hello");
    [first, archive] = buildImage(project, tmpDir("oci-out1"), "oci,oci-archive");
    assert.equal(first.format, "oci");
    assert.equal(archive.image.digest, first.image.digest);
    assert.deepEqual(
      first.image.layers.map((l) => l.group),
      ["base", "runtime", "app"],
      "hello has no third-party packages",
    );
    const index = JSON.parse(fs.readFileSync(path.join(first.path, "index.json"), "utf8")) as {
      manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[];
    };
    assert.equal(index.manifests[0].digest, first.image.digest);
    assert.equal(index.manifests[0].annotations?.["org.opencontainers.image.ref.name"], "1.0.0");
    const sbomEntry = index.manifests.find(
      (m) => m.artifactType === "application/vnd.cyclonedx+json",
    );
    assert.ok(sbomEntry, "the SBOM artifact is listed in index.json");
    assert.equal(sbomEntry.digest, first.image.sbom.digest);
    const blob = (d: string) => fs.readFileSync(path.join(first.path, "blobs/sha256", d.slice(7)));
    const artifact = JSON.parse(blob(sbomEntry.digest).toString()) as {
      subject: { digest: string };
      layers: { digest: string }[];
    };
    assert.equal(artifact.subject.digest, first.image.digest);
    assert.equal(JSON.parse(blob(artifact.layers[0].digest).toString()).bomFormat, "CycloneDX");

    if (!hasSkopeo) return skipPart(t, "skopeo is not installed (apt-get install skopeo)");
    for (const ref of [`oci:${first.path}:1.0.0`, `oci-archive:${archive.path}:1.0.0`]) {
      const r = run("skopeo", ["inspect", ref]);
      assert.equal(r.code, 0, r.stderr);
      const info = JSON.parse(r.stdout) as {
        Digest: string;
        Labels: Record<string, string>;
        Os: string;
      };
      assert.equal(info.Digest, first.image.digest, ref);
      assert.equal(info.Labels["org.opencontainers.image.version"], "1.0.0");
      assert.equal(info.Os, "linux");
    }
    const copy = path.join(tmpDir("oci-copy"), "copy");
    const c = run("skopeo", ["copy", `oci:${first.path}:1.0.0`, `oci:${copy}:copied`]);
    assert.equal(c.code, 0, c.stderr);
    const raw = run("skopeo", ["inspect", "--raw", `oci:${copy}:copied`]);
    assert.equal(
      `sha256:${(await import("node:crypto")).createHash("sha256").update(raw.stdout).digest("hex")}`,
      first.image.digest,
    );
  });

  test("hello runs FROM scratch in runc (umoci unpack + runc run)", async (t) => {
    if (!first) return skipPart(t, "the image was not built");
    const why = whyNoRunc();
    if (why) return skipPart(t, why);
    const bundle = unpackForRunc(`${first.path}:1.0.0`);
    const r = run("runc", ["run", `pyport-hello-${process.pid}`], { cwd: bundle });
    run("runc", ["delete", "-f", `pyport-hello-${process.pid}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Hello, world! \(Python 3\.\d+/);
    assert.ok(
      !fs.existsSync(path.join(bundle, "rootfs/usr")),
      "the image has no /usr: nothing but the bundle",
    );
  });

  test("two builds of the same inputs give the same digest; a code-only change adds one layer", async (t) => {
    if (!first) return skipPart(t, "the image was not built");
    const [again] = buildImage(project, tmpDir("oci-out2"));
    assert.equal(again.image.digest, first.image.digest);
    assert.ok(
      again.image.layers.every((l) => l.cached),
      "an unchanged rebuild compresses nothing",
    );
    const cli = path.join(project, "src/hello/cli.py");
    fs.appendFileSync(cli, "\n# a code-only change\n");
    const [changed] = buildImage(project, tmpDir("oci-out3"));
    assert.notEqual(changed.image.digest, first.image.digest);
    const differs = changed.image.layers.filter(
      (l, i) => l.digest !== first.image.layers[i].digest,
    );
    assert.deepEqual(
      differs.map((l) => l.group),
      ["app"],
    );
    assert.ok(differs[0].size < 1024 * 1024, `the new layer is small (${differs[0].size} bytes)`);
  });

  test("push to a registry on 127.0.0.1; a killed push resumes; skopeo copies the image back", async (t) => {
    if (!first) return skipPart(t, "the image was not built");
    if (!hasTool("docker-registry"))
      return skipPart(t, "docker-registry is not installed (apt-get install docker-registry)");
    const registry = await startRegistry();
    // The push goes through a proxy that stalls the 4th chunk (1 MiB each) of the runtime layer,
    // the first blob over 3 MiB, and is killed there: the registry has exactly 3 MiB of it.
    const proxy = await startStallingProxy(registry.address, 3);
    try {
      const target = `${proxy.address}/team/hello:1.0.0`;
      const runtime = first.image.layers.find((l) => l.group === "runtime")!;
      const pushArgs = ["push", first.path, target, "--insecure", "--json", "--chunk-size", "1"];
      const child = spawn(process.execPath, [CLI, ...pushArgs], { stdio: "ignore" });
      const closed = new Promise((r) => child.once("close", r));
      const outcome = await Promise.race([proxy.stalled.then(() => "stalled"), closed]);
      assert.equal(outcome, "stalled", "the push reached the 4th chunk of a blob");
      child.kill("SIGKILL");
      await closed;
      const killedAt = 3 * 2 ** 20;

      const second = await pyportAsync(pushArgs);
      assert.equal(second.code, 0, second.stderr);
      const events = second.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const resumed = events.find((e) => e.status === "resumed");
      assert.equal(resumed?.digest, runtime.digest, "the runtime layer resumes");
      assert.equal(resumed.offset, killedAt, "from where the registry stopped");
      const done = events.at(-1) as {
        event: string;
        digest: string;
        bytesUploaded: number;
        existing: string[];
      };
      assert.equal(done.event, "done");
      assert.equal(done.digest, first.image.digest);
      const total = first.image.layers.reduce((n, l) => n + l.size, 0);
      assert.ok(
        done.bytesUploaded <= total - killedAt,
        `sent ${done.bytesUploaded} of ${total} bytes`,
      );
      assert.ok(done.existing.length >= 1, "blobs sent before the kill are not sent again");

      const third = await pyportAsync(["push", first.path, target, "--insecure", "--json"]);
      assert.equal(third.code, 0, third.stderr);
      const last = JSON.parse(third.stdout.trim().split("\n").at(-1)!) as {
        uploaded: string[];
        bytesUploaded: number;
      };
      assert.deepEqual(
        [last.uploaded, last.bytesUploaded],
        [[], 0],
        "a repeated push sends nothing",
      );

      const tags = (await (
        await fetch(`http://${registry.address}/v2/team/hello/tags/list`)
      ).json()) as { tags: string[] };
      assert.ok(
        tags.tags.includes(`sha256-${first.image.digest.slice(7)}`),
        "the SBOM is listed under the referrers fallback tag",
      );

      if (!hasSkopeo) return skipPart(t, "skopeo is not installed (apt-get install skopeo)");
      const back = path.join(tmpDir("oci-back"), "back");
      const c = await runAsync("skopeo", [
        "copy",
        "--src-tls-verify=false",
        `docker://${target}`,
        `oci:${back}:back`,
      ]);
      assert.equal(c.code, 0, c.stderr);
      const raw = run("skopeo", ["inspect", "--raw", `oci:${back}:back`]);
      const { createHash } = await import("node:crypto");
      assert.equal(
        `sha256:${createHash("sha256").update(raw.stdout).digest("hex")}`,
        first.image.digest,
      );
    } finally {
      proxy.stop();
      registry.stop();
    }
  });

  test("the webapp image answers /health over HTTP from inside a container", async (t) => {
    if (!python) return skipPart(t, "no CPython with a shared libpython found");
    const why = whyNoRunc();
    if (why) return skipPart(t, why);
    const [image] = buildImage(copyExample("webapp"), tmpDir("oci-web"));
    const port = await freePort();
    const bundle = unpackForRunc(`${image.path}:1.0.0`, {
      args: ["/app/bin/webapp", "--host", "127.0.0.1", "--port", String(port)],
      hostNetwork: true,
    });
    const id = `pyport-web-${process.pid}`;
    const child = spawn("runc", ["run", id], { cwd: bundle, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    try {
      let body: { status?: string; prefix?: string } = {};
      for (let i = 0; i < 100 && body.status !== "ok"; i++) {
        body = await fetch(`http://127.0.0.1:${port}/health`).then(
          (r) => r.json() as Promise<typeof body>,
          () => ({}),
        );
        if (body.status !== "ok") await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(body.status, "ok", stderr);
      assert.equal(body.prefix, "/app");
    } finally {
      run("runc", ["kill", id, "KILL"]);
      await new Promise((r) => child.once("close", r));
      run("runc", ["delete", "-f", id]);
    }
  });

  test("libc = system: an image on a base image (an OCI archive holding only glibc) runs in runc", async (t) => {
    if (!python) return skipPart(t, "no CPython with a shared libpython found");
    const why = whyNoRunc() ?? (hasSkopeo ? undefined : "skopeo is not installed");
    if (why) return skipPart(t, why);
    // The base: glibc's loader and libraries from this machine, in an image made by umoci.
    const work = tmpDir("oci-base");
    const layout = path.join(work, "base");
    const rootfs = path.join(work, "unpacked");
    for (const args of [
      ["init", "--layout", layout],
      ["new", "--image", `${layout}:glibc`],
      ["unpack", "--image", `${layout}:glibc`, rootfs],
    ])
      assert.equal(run("umoci", args).code, 0, args.join(" "));
    const ldd = run("ldd", ["/bin/true"]).stdout;
    for (const lib of ldd.matchAll(/(\/\S+\.so[.\d]*)/g)) {
      const dest = path.join(rootfs, "rootfs", lib[1]);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.copyFileSync(lib[1], dest);
    }
    for (const l of ["libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1"]) {
      const libc = ldd.match(/=> (\S+)\/libc\.so\.6/)![1];
      if (fs.existsSync(path.join(libc, l)))
        fs.copyFileSync(path.join(libc, l), path.join(rootfs, "rootfs", libc, l));
    }
    assert.equal(run("umoci", ["repack", "--image", `${layout}:glibc`, rootfs]).code, 0);
    const archiveFile = path.join(work, "base.oci.tar");
    const c = run("skopeo", ["copy", `oci:${layout}:glibc`, `oci-archive:${archiveFile}:glibc`]);
    assert.equal(c.code, 0, c.stderr);

    const r = pyport([
      "build",
      copyExample("hello"),
      "--out",
      tmpDir("oci-sys-out"),
      "--format",
      "oci",
      "--libc",
      "system",
      "--base-image",
      `${archiveFile}:glibc`,
      "--python",
      python,
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [image] = (JSON.parse(r.stdout) as { outputs: ImageOutput[] }).outputs;
    assert.deepEqual(
      image.image.layers.map((l) => l.group),
      ["runtime", "app"],
      "no scratch layer on a base",
    );
    const bundle = unpackForRunc(`${image.path}:1.0.0`);
    const id = `pyport-sys-${process.pid}`;
    const out = run("runc", ["run", id], { cwd: bundle });
    run("runc", ["delete", "-f", id]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^Hello, world!/);
  });

  test("an image with libc = system needs a base image, and says so before any work", () => {
    const r = pyport([
      "build",
      copyExample("hello"),
      "--format",
      "oci",
      "--libc",
      "system",
      "--out",
      tmpDir("oci-sys"),
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /needs a base image that provides glibc/);
    assert.match(r.stderr, /--base-image/);
  });
});
