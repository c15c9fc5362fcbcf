/** Test helpers for images: the Debian tools (skopeo, umoci, runc, docker-registry) and a registry on loopback. */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import { isRoot, run, tmpDir } from "./helpers.js";

export function hasTool(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}

/** Why images cannot be run here (runc needs root and the tools), or undefined when they can. */
export function whyNoRunc(): string | undefined {
  if (!isRoot) return "runc needs root";
  for (const t of ["umoci", "runc"])
    if (!hasTool(t)) return `${t} is not installed (apt-get install umoci runc)`;
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A docker-registry (distribution 2.x) on 127.0.0.1, storing into a temp dir; with `tls` it
 * serves HTTPS with that certificate, with `htpasswd` it asks for Basic authentication.
 */
export async function startRegistry(
  opts: { tls?: { cert: string; key: string }; htpasswd?: string } = {},
): Promise<{ address: string; stop: () => void }> {
  const dir = tmpDir("registry");
  const port = await freePort();
  const config = path.join(dir, "config.yml");
  const tls = opts.tls
    ? `  tls:\n    certificate: ${opts.tls.cert}\n    key: ${opts.tls.key}\n`
    : "";
  const auth = opts.htpasswd
    ? `auth:\n  htpasswd:\n    realm: test\n    path: ${opts.htpasswd}\n`
    : "";
  fs.writeFileSync(
    config,
    `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n${tls}${auth}log:\n  level: warn\n`,
  );
  const child = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
  const stop = () => child.kill("SIGKILL");
  process.on("exit", stop);
  const probe = () =>
    new Promise<boolean>((resolve) => {
      const get = opts.tls ? https.get : http.get;
      const req = get(
        `${opts.tls ? "https" : "http"}://127.0.0.1:${port}/v2/`,
        { rejectUnauthorized: false },
        (res) => {
          res.resume();
          resolve(res.statusCode === 200 || res.statusCode === 401);
        },
      );
      req.on("error", () => resolve(false));
    });
  for (let i = 0; i < 100; i++) {
    const ok = await probe();
    if (ok) return { address: `127.0.0.1:${port}`, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error("docker-registry did not start within 10 s");
}

/**
 * Unpacks `layout:ref` with umoci into a runc bundle; `process` edits the OCI runtime config's
 * process (args…); `hostNetwork` drops the network namespace so the container's ports are the
 * host's (reached on 127.0.0.1).
 */
export function unpackForRunc(
  image: string,
  opts: { args?: string[]; hostNetwork?: boolean } = {},
): string {
  const dir = path.join(tmpDir("runc"), "bundle");
  const r = run("umoci", ["unpack", "--image", image, dir]);
  if (r.code !== 0) throw new Error(`umoci unpack failed: ${r.stderr}`);
  const file = path.join(dir, "config.json");
  const config = JSON.parse(fs.readFileSync(file, "utf8")) as {
    process: { terminal: boolean; args: string[] };
    linux: { namespaces: { type: string }[] };
  };
  config.process.terminal = false;
  if (opts.args) config.process.args = opts.args;
  if (opts.hostNetwork)
    config.linux.namespaces = config.linux.namespaces.filter((n) => n.type !== "network");
  fs.writeFileSync(file, JSON.stringify(config));
  return dir;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of `upstream` that holds (never answers) the first PATCH
 * after `patches` PATCHes to one upload, as a network that stalls mid-blob would; `stalled`
 * resolves then. Every other request, before and after, is passed through unchanged (the Host
 * header too, so the registry's upload locations point back at the proxy).
 */
export async function startStallingProxy(
  upstream: string,
  patches: number,
): Promise<{ address: string; stalled: Promise<void>; stop: () => void }> {
  const counts = new Map<string, number>();
  let held = false;
  let onStall = () => {};
  const stalled = new Promise<void>((resolve) => (onStall = resolve));
  const server = http.createServer((req, res) => {
    const upload = (req.url ?? "").split("?")[0];
    if (req.method === "PATCH" && !held) {
      const n = (counts.get(upload) ?? 0) + 1;
      counts.set(upload, n);
      if (n > patches) {
        held = true;
        req.resume();
        onStall();
        return;
      }
    }
    const [host, port] = upstream.split(":");
    const out = http.request(
      { host, port: Number(port), method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${port}`,
    stalled,
    stop: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
