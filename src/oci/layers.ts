/**
 * An image's layers, split by how often they change: `runtime` (the interpreter and standard
 * library), `packages` (third-party distributions) and `app` (the project's own distribution,
 * its launchers, the manifest and licence record), so a change to the project's code makes one
 * new small layer. Each layer is a reproducible tar (tar-write.ts: sorted, uid 0, one mtime),
 * gzip-compressed; compressed layers are cached by their uncompressed digest (`diff_id`), so a
 * rebuild compresses only what changed.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import { archiveEpoch, collectTree, tarChunks, type TarEntry } from "../archive/tar-write.js";
import { bucketDir } from "../store/buckets.js";
import { hasErrno } from "../errors.js";
import { linkBlob, MEDIA, type Descriptor } from "./layout.js";

export type LayerGroup = "runtime" | "packages" | "app";
export const LAYER_GROUPS: LayerGroup[] = ["runtime", "packages", "app"];

/** Files pyport writes at the bundle's top level for the app (they change with it). */
const APP_FILES = new Set(["PYPORT.json", "sbom.cdx.json", "LICENSES.md"]);
const LAYER_BUCKET = "oci-layers-v1";

const normalise = (n: string) => n.toLowerCase().replace(/[-_.]+/g, "_");

/** Which group each path (relative to the bundle) belongs to, from the distributions' RECORDs. */
async function recordGroups(
  bundle: string,
  site: string,
  project: string,
): Promise<{ byPath: Map<string, LayerGroup>; byTop: Map<string, LayerGroup> }> {
  const byPath = new Map<string, LayerGroup>();
  const byTop = new Map<string, LayerGroup>();
  for (const d of await fsp.readdir(site)) {
    if (!d.endsWith(".dist-info")) continue;
    const group: LayerGroup =
      normalise(d.replace(/-[^-]*\.dist-info$/, "")) === normalise(project) ? "app" : "packages";
    byTop.set(d, group);
    let record = "";
    try {
      record = await fsp.readFile(path.join(site, d, "RECORD"), "utf8");
    } catch (err) {
      if (!hasErrno(err, "ENOENT")) throw err;
    }
    for (const line of record.split("\n")) {
      const file = line.split(",")[0];
      if (!file) continue;
      const rel = path.relative(bundle, path.resolve(site, file));
      if (rel.startsWith("..")) continue;
      byPath.set(rel, group);
      if (!file.startsWith("..")) {
        const top = file.split("/")[0];
        byTop.set(top.endsWith(".py") ? top.slice(0, -3) : top, group);
      }
    }
  }
  return { byPath, byTop };
}

/** The bundle's entries (as `prefix/…` in the image) grouped into layers. */
export async function groupBundle(opts: {
  bundle: string;
  site: string;
  project: string;
  prefix: string;
}): Promise<Record<LayerGroup, TarEntry[]>> {
  const { bundle, site, prefix } = opts;
  const { byPath, byTop } = await recordGroups(bundle, site, opts.project);
  const siteRel = path.relative(bundle, site);
  const groupOf = (rel: string): LayerGroup => {
    if (APP_FILES.has(rel) || rel === "licenses" || rel.startsWith("licenses/")) return "app";
    const known = byPath.get(rel);
    if (known) return known;
    if (!rel.startsWith(`${siteRel}/`)) return "runtime";
    const parts = rel.slice(siteRel.length + 1).split("/");
    // A top-level module's bytecode: __pycache__/<module>.cpython-XY.pyc
    const top = parts[0] === "__pycache__" && parts[1] ? parts[1].split(".")[0] : parts[0];
    return byTop.get(top.endsWith(".py") ? top.slice(0, -3) : top) ?? "packages";
  };
  const groups: Record<LayerGroup, Map<string, TarEntry>> = {
    runtime: new Map(),
    packages: new Map(),
    app: new Map(),
  };
  const root = `${prefix}/`;
  for (const e of await collectTree(bundle, prefix)) {
    if (e.name === root) continue;
    const rel = e.name.slice(root.length).replace(/\/$/, "");
    const g = groups[groupOf(rel)];
    g.set(e.name, e);
  }
  // Every layer carries the directories above its files (identical in each: mode 0755).
  const dirs = new Map<string, TarEntry>();
  for (const map of Object.values(groups))
    for (const e of map.values()) if (e.kind === "dir") dirs.set(e.name, e);
  const out = {} as Record<LayerGroup, TarEntry[]>;
  for (const group of LAYER_GROUPS) {
    const map = groups[group];
    for (const name of [...map.keys()]) {
      for (let i = name.indexOf("/"); i >= 0 && i < name.length - 1; i = name.indexOf("/", i + 1)) {
        const parent = name.slice(0, i + 1);
        if (!map.has(parent))
          map.set(
            parent,
            dirs.get(parent) ?? { name: parent, kind: "dir", mode: 0o755, size: 0, full: "" },
          );
      }
    }
    out[group] = [...map.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  return out;
}

/** A sink that only hashes what it is given. */
function hashSink(hash: ReturnType<typeof createHash>): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done();
    },
  });
}

export interface BuiltLayer {
  descriptor: Descriptor;
  diffId: string;
  /** True when the compressed layer came from the cache (nothing compressed). */
  cached: boolean;
}

/**
 * Writes the layer of `entries` into `layout` as a gzip blob. The uncompressed tar is hashed
 * first; a layer with that diff_id already in the cache is linked in without compressing.
 */
export async function writeLayer(
  layout: string,
  entries: TarEntry[],
  annotations?: Record<string, string>,
): Promise<BuiltLayer> {
  const mtime = archiveEpoch();
  const diffHash = createHash("sha256");
  await pipeline(Readable.from(tarChunks(entries, mtime)), hashSink(diffHash));
  const diffId = `sha256:${diffHash.digest("hex")}`;
  const cache = bucketDir(LAYER_BUCKET);
  const record = path.join(cache, `${diffId.slice(7)}.json`);
  let cached = true;
  let digest: string;
  let size: number;
  try {
    ({ digest, size } = JSON.parse(await fsp.readFile(record, "utf8")) as {
      digest: string;
      size: number;
    });
    const st = await fsp.stat(path.join(cache, digest.slice(7)));
    if (st.size !== size) throw Object.assign(new Error("size"), { code: "ENOENT" });
  } catch (err) {
    if (!hasErrno(err, "ENOENT") && !(err instanceof SyntaxError)) throw err;
    cached = false;
    await fsp.mkdir(cache, { recursive: true });
    const tmp = path.join(cache, `.tmp-${process.pid}-${Date.now().toString(36)}`);
    const hash = createHash("sha256");
    const gzip = zlib.createGzip({ level: 9 });
    gzip.on("data", (c: Buffer) => hash.update(c));
    try {
      await pipeline(Readable.from(tarChunks(entries, mtime)), gzip, fs.createWriteStream(tmp));
      digest = `sha256:${hash.digest("hex")}`;
      size = (await fsp.stat(tmp)).size;
      await fsp.rename(tmp, path.join(cache, digest.slice(7)));
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    await fsp.writeFile(record, JSON.stringify({ digest, size }) + "\n");
  }
  await linkBlob(layout, digest, path.join(cache, digest.slice(7)));
  const descriptor: Descriptor = { mediaType: MEDIA.layerGzip, digest, size };
  if (annotations) descriptor.annotations = annotations;
  return { descriptor, diffId, cached };
}
