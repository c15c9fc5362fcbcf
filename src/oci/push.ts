/**
 * `push`: an image from an OCI layout (or archive) to a registry over the distribution API.
 * Each blob is checked first (HEAD) and uploaded only when missing, in chunks (POST, PATCH…,
 * PUT); the upload's location and offset are saved after every chunk, so a push that was killed
 * resumes a half-sent blob where the registry says it stopped. Then the manifest is put under
 * the tag, and the image's referrers in the layout (the SBOM) are pushed by digest — listed by
 * the registry's referrers API when it has one, else under the `sha256-<hex>` fallback tag.
 */
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { extractArchive } from "../archive/extract.js";
import { hasErrno, PyportError } from "../errors.js";
import { bucketDir } from "../store/buckets.js";
import { writeFileAtomic } from "../util/fs.js";
import { blobPath, findImage, jsonBytes, MEDIA, readBlob, readIndex } from "./layout.js";
import { splitImageRef } from "./layout.js";
import type { Descriptor, ImageIndex, ImageManifest } from "./layout.js";
import { parseReference, RegistryClient, type Credentials } from "./registry.js";

export type PushEvent =
  | {
      event: "blob";
      digest: string;
      size: number;
      status: "exists" | "uploading" | "uploaded" | "resumed";
      offset?: number;
    }
  | { event: "progress"; digest: string; sent: number; size: number }
  | { event: "manifest"; digest: string; tag: string }
  | {
      event: "referrer";
      digest: string;
      artifactType: string;
      via: "referrers-api" | "tag-schema";
    };

export interface PushOptions {
  /** An OCI layout directory or archive, optionally `:REF` (the tag inside the layout). */
  image: string;
  /** REGISTRY/REPOSITORY[:TAG] */
  target: string;
  insecure?: boolean;
  credentials?: Credentials;
  /** Bytes per PATCH (default 16 MiB). */
  chunkSize?: number;
  onEvent?: (e: PushEvent) => void;
}

export interface PushResult {
  digest: string;
  reference: string;
  uploaded: string[];
  existing: string[];
  bytesUploaded: number;
  referrers: string[];
}

const PUSH_BUCKET = "push-v1";
const ARCH: Record<string, string> = { x86_64: "amd64", aarch64: "arm64" };

interface UploadState {
  location: string;
  offset: number;
}

/** Uploads one blob from `file` unless the registry has it; resumes a saved upload. */
async function pushBlob(
  client: RegistryClient,
  d: Descriptor,
  file: string,
  chunkSize: number,
  onEvent: (e: PushEvent) => void,
): Promise<number> {
  const head = await client.request("HEAD", `blobs/${d.digest}`, { expect: [200, 404] });
  if (head.status === 200) {
    onEvent({ event: "blob", digest: d.digest, size: d.size, status: "exists" });
    return -1;
  }
  const key = createHash("sha256")
    .update(`${client.base}/${client.ref.repository}@${d.digest}`)
    .digest("hex");
  const stateFile = path.join(bucketDir(PUSH_BUCKET), `${key}.json`);
  let state: UploadState | undefined;
  try {
    const saved = JSON.parse(await fsp.readFile(stateFile, "utf8")) as UploadState;
    const status = await client.request("GET", saved.location, { expect: [204, 404, 400] });
    const range = /^0-(\d+)$/.exec(status.headers.get("range") ?? "");
    if (status.status === 204 && range) {
      state = {
        location: status.headers.get("location") ?? saved.location,
        offset: Number(range[1]) + 1,
      };
      onEvent({
        event: "blob",
        digest: d.digest,
        size: d.size,
        status: "resumed",
        offset: state.offset,
      });
    }
  } catch (err) {
    if (!hasErrno(err, "ENOENT") && !(err instanceof SyntaxError) && !(err instanceof PyportError))
      throw err;
  }
  if (!state) {
    const start = await client.request("POST", "blobs/uploads/", {
      expect: [202],
      headers: { "Content-Length": "0" },
    });
    state = { location: start.headers.get("location") ?? "", offset: 0 };
    onEvent({ event: "blob", digest: d.digest, size: d.size, status: "uploading" });
  }
  await fsp.mkdir(path.dirname(stateFile), { recursive: true });
  let sent = 0;
  const handle = await fsp.open(file, "r");
  try {
    // A chunk the registry refuses (the upload expired or its range is wrong) also ends the
    // saved upload, so the next push starts this blob afresh instead of failing again.
    while (state.offset < d.size) {
      const length = Math.min(chunkSize, d.size - state.offset);
      const chunk = Buffer.alloc(length);
      await handle.read(chunk, 0, length, state.offset);
      const res = await client.request("PATCH", state.location, {
        expect: [202],
        onRefused: () => fsp.rm(stateFile, { force: true }),
        body: chunk,
        headers: {
          "Content-Type": "application/octet-stream",
          "Content-Range": `${state.offset}-${state.offset + length - 1}`,
          "Content-Length": String(length),
        },
      });
      state = {
        location: res.headers.get("location") ?? state.location,
        offset: state.offset + length,
      };
      sent += length;
      await writeFileAtomic(stateFile, JSON.stringify(state));
      onEvent({ event: "progress", digest: d.digest, sent: state.offset, size: d.size });
    }
  } finally {
    await handle.close();
  }
  const url = new URL(client.url(state.location));
  url.searchParams.set("digest", d.digest);
  try {
    await client.request("PUT", url.toString(), {
      expect: [201],
      headers: { "Content-Length": "0" },
    });
  } finally {
    // Finished or refused (a digest mismatch): either way this upload is not resumed again.
    await fsp.rm(stateFile, { force: true });
  }
  onEvent({ event: "blob", digest: d.digest, size: d.size, status: "uploaded" });
  return sent;
}

/** Puts a manifest (or index) under `reference`; returns the response. */
async function putManifest(
  client: RegistryClient,
  reference: string,
  body: Buffer,
  mediaType: string,
) {
  return client.request("PUT", `manifests/${reference}`, {
    expect: [201],
    body,
    headers: { "Content-Type": mediaType, "Content-Length": String(body.length) },
  });
}

/** Adds `d` to the image index under the referrers fallback tag of `subject`. */
async function tagSchemaReferrer(
  client: RegistryClient,
  subject: string,
  d: Descriptor,
): Promise<void> {
  const tag = subject.replace(":", "-");
  const res = await client.request("GET", `manifests/${tag}`, {
    expect: [200, 404],
    headers: { Accept: MEDIA.index },
  });
  const index: ImageIndex =
    res.status === 200
      ? ((await res.json()) as ImageIndex)
      : { schemaVersion: 2, mediaType: MEDIA.index, manifests: [] };
  if (index.manifests.some((m) => m.digest === d.digest)) return;
  index.manifests.push(d);
  await putManifest(client, tag, jsonBytes(index), MEDIA.index);
}

/** Pushes the image; see the module comment. */
export async function push(opts: PushOptions): Promise<PushResult> {
  const onEvent = opts.onEvent ?? (() => undefined);
  const ref = parseReference(opts.target);
  const { path: source, ref: layoutRef } = splitImageRef(opts.image);
  let layout = source;
  let scratch: string | undefined;
  if ((await fsp.stat(source)).isFile()) {
    scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "pyport-push-"));
    layout = path.join(scratch, "image");
    await extractArchive(source, layout);
  }
  try {
    const { descriptor, manifest } = await findImage(
      layout,
      layoutRef,
      ARCH[os.machine()] ?? os.machine(),
    );
    const client = new RegistryClient(ref, {
      insecure: opts.insecure,
      credentials: opts.credentials,
    });
    const result: PushResult = {
      digest: descriptor.digest,
      reference: `${ref.registry}/${ref.repository}:${ref.tag}`,
      uploaded: [],
      existing: [],
      bytesUploaded: 0,
      referrers: [],
    };
    const pushBlobs = async (blobs: Descriptor[]) => {
      for (const d of blobs) {
        const sent = await pushBlob(
          client,
          d,
          blobPath(layout, d.digest),
          opts.chunkSize ?? 16 * 2 ** 20,
          onEvent,
        );
        if (sent < 0) result.existing.push(d.digest);
        else {
          result.uploaded.push(d.digest);
          result.bytesUploaded += sent;
        }
      }
    };
    await pushBlobs([manifest.config, ...manifest.layers]);
    await putManifest(client, ref.tag, await readBlob(layout, descriptor), descriptor.mediaType);
    onEvent({ event: "manifest", digest: descriptor.digest, tag: ref.tag });
    for (const a of (await readIndex(layout)).manifests.filter((m) => m.artifactType)) {
      const artifact = JSON.parse((await readBlob(layout, a)).toString()) as ImageManifest;
      if (artifact.subject?.digest !== descriptor.digest) continue;
      await pushBlobs([artifact.config, ...artifact.layers]);
      const res = await putManifest(client, a.digest, await readBlob(layout, a), a.mediaType);
      const viaApi = res.headers.has("oci-subject");
      if (!viaApi)
        await tagSchemaReferrer(client, descriptor.digest, {
          mediaType: a.mediaType,
          digest: a.digest,
          size: a.size,
          artifactType: artifact.artifactType,
        });
      result.referrers.push(a.digest);
      onEvent({
        event: "referrer",
        digest: a.digest,
        artifactType: artifact.artifactType ?? "",
        via: viaApi ? "referrers-api" : "tag-schema",
      });
    }
    return result;
  } finally {
    if (scratch) await fsp.rm(scratch, { recursive: true, force: true });
  }
}
