/**
 * OCI image layouts (image-spec `image-layout.md`): a directory with `oci-layout`, `index.json`
 * and content-addressed `blobs/sha256/<hex>`. Writing: every blob is written under its digest
 * (a blob already there is kept); reading: the manifests of `index.json`, each blob checked
 * against its digest before use.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { hasErrno, PyportError } from "../errors.js";
import { sha256File } from "../util/fs.js";

export const MEDIA = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  layer: "application/vnd.oci.image.layer.v1.tar",
  empty: "application/vnd.oci.empty.v1+json",
  cyclonedx: "application/vnd.cyclonedx+json",
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
  data?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export const sha256Digest = (data: Buffer | string) =>
  `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** Canonical JSON bytes for a manifest, config or index (what its digest is taken over). */
export const jsonBytes = (value: unknown) => Buffer.from(JSON.stringify(value));

export function blobPath(layout: string, digest: string): string {
  const [alg, hex] = digest.split(":");
  if (alg !== "sha256" || !/^[0-9a-f]{64}$/.test(hex ?? ""))
    throw new PyportError("E_CONFIG", `unsupported or malformed digest ${JSON.stringify(digest)}`, {
      hint: "pyport reads sha256 digests only.",
    });
  return path.join(layout, "blobs", "sha256", hex);
}

/** Writes `data` as a blob of `layout`; returns its descriptor. */
export async function putBlob(
  layout: string,
  mediaType: string,
  data: Buffer,
): Promise<Descriptor> {
  const digest = sha256Digest(data);
  const file = blobPath(layout, digest);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  if (!fs.existsSync(file)) {
    const tmp = `${file}.tmp-${process.pid}`;
    await fsp.writeFile(tmp, data, { mode: 0o644 });
    await fsp.rename(tmp, file);
  }
  return { mediaType, digest, size: data.length };
}

/** Links (or copies) the file `src`, whose digest is `digest`, in as a blob of `layout`. */
export async function linkBlob(layout: string, digest: string, src: string): Promise<void> {
  const file = blobPath(layout, digest);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  if (fs.existsSync(file)) return;
  try {
    await fsp.link(src, file);
  } catch (err) {
    if (!hasErrno(err, "EXDEV") && !hasErrno(err, "EPERM")) throw err;
    await fsp.copyFile(src, file);
  }
}

/** Writes `oci-layout` and `index.json` listing `manifests`. */
export async function writeIndex(
  layout: string,
  manifests: Descriptor[],
  annotations?: Record<string, string>,
): Promise<void> {
  await fsp.writeFile(
    path.join(layout, "oci-layout"),
    JSON.stringify({ imageLayoutVersion: "1.0.0" }) + "\n",
  );
  const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA.index, manifests };
  if (annotations) index.annotations = annotations;
  await fsp.writeFile(path.join(layout, "index.json"), JSON.stringify(index, null, 2) + "\n");
}

/**
 * Splits `PATH[:REF]` (an image layout directory or archive, and a tag inside it) where PATH
 * exists; E_NOT_FOUND otherwise.
 */
export function splitImageRef(spec: string): { path: string; ref?: string } {
  if (fs.existsSync(spec)) return { path: spec };
  const colon = spec.lastIndexOf(":");
  if (colon > 0 && fs.existsSync(spec.slice(0, colon)))
    return { path: spec.slice(0, colon), ref: spec.slice(colon + 1) };
  throw new PyportError("E_NOT_FOUND", `the image ${spec} does not exist`, {
    hint: "Give an OCI image layout directory or archive (.oci, .oci.tar), optionally with :TAG.",
  });
}

/** The bytes of blob `d`, checked against its digest and size. */
export async function readBlob(layout: string, d: Descriptor): Promise<Buffer> {
  const data = await fsp.readFile(blobPath(layout, d.digest)).catch((err: unknown) => {
    if (hasErrno(err, "ENOENT"))
      throw new PyportError("E_CONFIG", `${layout} lacks the blob ${d.digest}`, {
        hint: "The image layout is incomplete; copy it again (skopeo copy).",
      });
    throw err;
  });
  if (sha256Digest(data) !== d.digest || data.length !== d.size)
    throw new PyportError("E_CONFIG", `${layout}: blob ${d.digest} does not match its digest`, {
      hint: "The image layout is damaged; copy it again.",
    });
  return data;
}

/** Checks a large blob (a layer) against its digest without reading it into memory. */
export async function verifyBlobFile(layout: string, d: Descriptor): Promise<string> {
  const file = blobPath(layout, d.digest);
  const hex = await sha256File(file).catch((err: unknown) => {
    if (hasErrno(err, "ENOENT"))
      throw new PyportError("E_CONFIG", `${layout} lacks the layer ${d.digest}`, {
        hint: "The image layout is incomplete; copy it again (skopeo copy).",
      });
    throw err;
  });
  if (`sha256:${hex}` !== d.digest)
    throw new PyportError("E_CONFIG", `${layout}: layer ${d.digest} does not match its digest`, {
      hint: "The image layout is damaged; copy it again.",
    });
  return file;
}

export async function readIndex(layout: string): Promise<ImageIndex> {
  const file = path.join(layout, "index.json");
  let index: ImageIndex;
  try {
    index = JSON.parse(await fsp.readFile(file, "utf8")) as ImageIndex;
  } catch (err) {
    if (hasErrno(err, "ENOENT"))
      throw new PyportError("E_NOT_FOUND", `${layout} is not an OCI image layout (no index.json)`, {
        hint: "Give the directory written by `pyport build --format oci` or `skopeo copy … oci:DIR`.",
      });
    throw new PyportError("E_CONFIG", `${file} is not valid JSON: ${(err as Error).message}`, {
      hint: "The image layout is damaged; copy it again.",
    });
  }
  if (!Array.isArray(index.manifests))
    throw new PyportError("E_CONFIG", `${file} has no manifests`, {
      hint: "The image layout is damaged; copy it again.",
    });
  return index;
}

/**
 * The image manifest of `layout` named `ref` (its `org.opencontainers.image.ref.name`), or the
 * only image when `ref` is undefined; an index is followed to its entry for `arch`.
 */
export async function findImage(
  layout: string,
  ref: string | undefined,
  arch: string,
): Promise<{ descriptor: Descriptor; manifest: ImageManifest }> {
  const index = await readIndex(layout);
  const images = index.manifests.filter(
    (m) =>
      (m.mediaType === MEDIA.manifest || m.mediaType === MEDIA.index) &&
      !m.artifactType &&
      (ref === undefined || m.annotations?.["org.opencontainers.image.ref.name"] === ref),
  );
  const names = index.manifests
    .map((m) => m.annotations?.["org.opencontainers.image.ref.name"])
    .filter(Boolean);
  if (images.length !== 1)
    throw new PyportError(
      "E_USAGE",
      images.length
        ? `${layout} holds several images; say which one`
        : `${layout} has no image${ref ? ` named ${ref}` : ""}`,
      { hint: `Name it as PATH:REF; its names: ${names.join(", ") || "none"}.` },
    );
  let descriptor = images[0];
  if (descriptor.mediaType === MEDIA.index) {
    const inner = JSON.parse((await readBlob(layout, descriptor)).toString()) as ImageIndex;
    const match = inner.manifests.find((m) => m.platform?.architecture === arch);
    if (!match)
      throw new PyportError("E_USAGE", `${layout} has no image for ${arch}`, {
        hint: `It has: ${inner.manifests.map((m) => m.platform?.architecture ?? "?").join(", ")}.`,
      });
    descriptor = match;
  }
  const manifest = JSON.parse((await readBlob(layout, descriptor)).toString()) as ImageManifest;
  return { descriptor, manifest };
}
