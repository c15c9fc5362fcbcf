/**
 * `pyport push` against real docker-registry instances: TLS by default (an untrusted certificate
 * is named, a trusted one works), Basic authentication with credentials from REGISTRY_AUTH_FILE or
 * --password-stdin (a wrong password is named as such), a Bearer token fetched from the realm a
 * token service names, and a plain-HTTP registry reached only with --insecure, which says so.
 * The image is a small valid OCI image made here (push does not care what the layers hold).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { writeLayer } from "../src/oci/layers.js";
import { jsonBytes, MEDIA, putBlob, writeIndex } from "../src/oci/layout.js";
import { CLI, run, skipPart, tmpDir, useTestCache } from "./helpers.js";
import { freePort, hasTool, startRegistry } from "./oci-tools.js";

useTestCache();

let image = "";
let digest = "";

before(async () => {
  image = path.join(tmpDir("push-image"), "tiny.oci");
  fs.mkdirSync(image);
  const data = Buffer.from("hello from a tiny layer\n");
  const layer = await writeLayer(image, [
    { name: "hello.txt", kind: "file", mode: 0o644, size: data.length, full: "", data },
  ]);
  const config = await putBlob(
    image,
    MEDIA.config,
    jsonBytes({
      architecture: "amd64",
      os: "linux",
      config: {},
      rootfs: { type: "layers", diff_ids: [layer.diffId] },
    }),
  );
  const manifest = await putBlob(
    image,
    MEDIA.manifest,
    jsonBytes({ schemaVersion: 2, mediaType: MEDIA.manifest, config, layers: [layer.descriptor] }),
  );
  digest = manifest.digest;
  await writeIndex(image, [
    { ...manifest, annotations: { "org.opencontainers.image.ref.name": "1" } },
  ]);
});

function push(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  return run(process.execPath, [CLI, "push", image, ...args], {
    env: { ...process.env, ...opts.env },
    input: opts.input,
  });
}

/** `push` without blocking this process's event loop (which serves the token service). */
function pushAsync(args: string[], input: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, "push", image, ...args]);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

const why = !hasTool("docker-registry")
  ? "docker-registry is not installed (apt-get install docker-registry)"
  : undefined;

describe("push: TLS and Basic authentication", { timeout: 120_000 }, () => {
  let registry: { address: string; stop: () => void } | undefined;
  let dir = "";
  const skip =
    why ??
    (hasTool("htpasswd") && hasTool("openssl")
      ? undefined
      : "needs htpasswd (apache2-utils) and openssl");

  before(async () => {
    if (skip) return;
    dir = tmpDir("push-tls");
    const cert = path.join(dir, "cert.pem");
    const key = path.join(dir, "key.pem");
    const r = run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      key,
      "-out",
      cert,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const htpasswd = path.join(dir, "htpasswd");
    const h = spawnSync("htpasswd", ["-Bbn", "alice", "s3cret"], { encoding: "utf8" });
    fs.writeFileSync(htpasswd, h.stdout);
    registry = await startRegistry({ tls: { cert, key }, htpasswd });
  });
  after(() => registry?.stop());

  test("an untrusted certificate is named, with what to do", async (t) => {
    if (skip) return skipPart(t, skip);
    const r = push([`${registry!.address}/team/tiny:1`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /its TLS certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
    assert.match(r.stderr, /NODE_EXTRA_CA_CERTS/);
  });

  test("no credentials: the registry asks for a login; a wrong password is refused by name", async (t) => {
    if (skip) return skipPart(t, skip);
    const env = {
      NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem"),
      DOCKER_CONFIG: tmpDir("no-docker"),
    };
    const none = push([`${registry!.address}/team/tiny:1`], { env });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /asks for a login/);
    const wrong = push(
      [`${registry!.address}/team/tiny:1`, "--username", "alice", "--password-stdin"],
      { env, input: "wrong\n" },
    );
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /refused the credentials of alice for team\/tiny/);
  });

  test("credentials from REGISTRY_AUTH_FILE or --password-stdin, over TLS", async (t) => {
    if (skip) return skipPart(t, skip);
    const authFile = path.join(dir, "auth.json");
    fs.writeFileSync(
      authFile,
      JSON.stringify({
        auths: { [registry!.address]: { auth: Buffer.from("alice:s3cret").toString("base64") } },
      }),
    );
    const env = { NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem"), REGISTRY_AUTH_FILE: authFile };
    const first = push([`${registry!.address}/team/tiny:1`, "--json"], { env });
    assert.equal(first.code, 0, first.stderr);
    const done = JSON.parse(first.stdout.trim().split("\n").at(-1)!) as {
      digest: string;
      uploaded: string[];
    };
    assert.equal(done.digest, digest);
    assert.equal(done.uploaded.length, 2, "the layer and the config");
    const second = push(
      [`${registry!.address}/team/tiny:2`, "--username", "alice", "--password-stdin"],
      {
        env: { NODE_EXTRA_CA_CERTS: env.NODE_EXTRA_CA_CERTS },
        input: "s3cret\n",
      },
    );
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /0 blob\(s\) uploaded, 0\.0 MiB; 2 already there/);
  });
});

describe("push: Bearer tokens and plain HTTP", { timeout: 120_000 }, () => {
  let registry: { address: string; stop: () => void } | undefined;
  let proxy: http.Server | undefined;
  let proxyAddress = "";
  const tokenRequests: {
    authorization?: string;
    scope?: string | null;
    service?: string | null;
  }[] = [];

  before(async () => {
    if (why) return;
    registry = await startRegistry();
    // A token service in front of the registry, as registries with bearer auth have: /v2/ needs
    // "Bearer T"; /token hands T out to bob (Basic) for the scope asked.
    const port = await freePort();
    proxyAddress = `127.0.0.1:${port}`;
    proxy = http.createServer((req, res) => {
      const url = new URL(req.url!, `http://${proxyAddress}`);
      if (url.pathname === "/token") {
        tokenRequests.push({
          authorization: req.headers.authorization,
          scope: url.searchParams.get("scope"),
          service: url.searchParams.get("service"),
        });
        const ok =
          req.headers.authorization === `Basic ${Buffer.from("bob:pw").toString("base64")}`;
        res.writeHead(ok ? 200 : 401, { "Content-Type": "application/json" });
        res.end(ok ? JSON.stringify({ token: "T0KEN" }) : "{}");
        return;
      }
      if (req.headers.authorization !== "Bearer T0KEN") {
        res.writeHead(401, {
          "WWW-Authenticate": `Bearer realm="http://${proxyAddress}/token",service="test-registry"`,
        });
        res.end();
        return;
      }
      const upstream = http.request(
        {
          host: "127.0.0.1",
          port: Number(registry!.address.split(":")[1]),
          path: req.url,
          method: req.method,
          headers: req.headers,
        },
        (up) => {
          res.writeHead(up.statusCode!, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy!.listen(port, "127.0.0.1", r));
  });
  after(() => {
    proxy?.close();
    registry?.stop();
  });

  test("a Bearer token is fetched from the realm the registry names, for pull and push", async (t) => {
    if (why) return skipPart(t, why);
    const r = await pushAsync(
      [`${proxyAddress}/team/tiny:1`, "--insecure", "--username", "bob", "--password-stdin"],
      "pw\n",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /--insecure: talking plain HTTP to 127\.0\.0\.1:\d+; the image and your credentials travel unencrypted/,
    );
    assert.deepEqual(tokenRequests[0], {
      authorization: `Basic ${Buffer.from("bob:pw").toString("base64")}`,
      scope: "repository:team/tiny:pull,push",
      service: "test-registry",
    });
    const res = await fetch(`http://${registry!.address}/v2/team/tiny/manifests/1`, {
      method: "HEAD",
      headers: { Accept: MEDIA.manifest },
    });
    assert.equal(res.headers.get("docker-content-digest"), digest);
  });

  test("a plain-HTTP registry is reached only with --insecure", async (t) => {
    if (why) return skipPart(t, why);
    const r = push([`${registry!.address}/team/tiny:1`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot reach https:\/\/127\.0\.0\.1:\d+/);
    assert.match(r.stderr, /needs --insecure/);
  });

  test("bad targets are usage errors that say what a target looks like", () => {
    for (const [target, message] of [
      ["hello:1", /does not name a registry/],
      ["127.0.0.1:5000/Bad_Name:1", /is not a valid repository name/],
      ["127.0.0.1:5000/ok:bad tag", /is not a valid tag/],
    ] as const) {
      const r = push([target]);
      assert.equal(r.code, 2, target);
      assert.match(r.stderr, message);
    }
  });
});
