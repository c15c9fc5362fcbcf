/**
 * A bundle → an OCI image layout. With `libc = "bundled"` the image is `FROM scratch`: a small
 * base layer (`/etc/passwd` and `/etc/group` with the non-root user 65532, `/tmp`, the build
 * machine's CA certificates), then the bundle at `/app` in three layers (layers.ts). With
 * `libc = "system"` it is built on a base image given as an OCI layout or archive. The config
 * carries the service's entrypoint, args, env, ports, working dir, user, stop signal and the
 * `org.opencontainers.image.*` labels; the bundle's CycloneDX SBOM is attached as an artifact
 * whose `subject` is the image (OCI 1.1 referrers). Same inputs, same digests.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { archiveEpoch, type TarEntry } from "../archive/tar-write.js";
import { PyportError } from "../errors.js";
import { findImage, jsonBytes, linkBlob, MEDIA, putBlob, readBlob } from "./layout.js";
import { verifyBlobFile, writeIndex } from "./layout.js";
import type { Descriptor, ImageManifest } from "./layout.js";
import { groupBundle, LAYER_GROUPS, writeLayer, type BuiltLayer } from "./layers.js";

export const IMAGE_ROOT = "/app";
export const REF_NAME = "org.opencontainers.image.ref.name";
/** On index.json: the project an image layout was built from (how a rebuild knows it may replace it). */
export const PROJECT_ANNOTATION = "dev.pyport.project";
export const IMAGE_USER = "65532:65532";
const CA_FILE = "/etc/ssl/certs/ca-certificates.crt";

const ARCH: Record<string, string> = {
  x86_64: "amd64",
  aarch64: "arm64",
  armv7l: "arm",
  ppc64le: "ppc64le",
  s390x: "s390x",
  i686: "386",
};

interface ImageConfig {
  created?: string;
  architecture: string;
  os: string;
  config: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    ExposedPorts?: Record<string, object>;
    Labels?: Record<string, string>;
    StopSignal?: string;
  };
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean }[];
}

/** What the image's config takes from the service spec (bundle/service-spec.ts). */
export interface ImageService {
  args: string[];
  env: Record<string, string>;
  ports: { port: number; protocol: string }[];
  workdir?: string;
  stopSignal: string;
}

export interface ImageInput {
  bundle: string;
  site: string;
  name: string;
  version: string;
  machine: string;
  /** The service the image runs (its command, args, env, ports…). */
  service: ImageService;
  /** Resolved: the console script or command the entrypoint starts, inside the bundle. */
  command: string[];
  labels: Record<string, string>;
  sbom: Buffer;
  /** An OCI layout directory (and a tag in it) to build on; none: scratch. */
  base?: { layout: string; ref?: string };
}

export interface ImageResult {
  /** The image manifest's descriptor (its digest names the image). */
  manifest: Descriptor;
  config: Descriptor;
  layers: { group: string; digest: string; size: number; diffId: string; cached: boolean }[];
  sbom: Descriptor;
  /** The tag it carries in the layout (`org.opencontainers.image.ref.name`). */
  ref: string;
}

/** The scratch image's base layer: users, /tmp and CA certificates. */
function scratchEntries(): TarEntry[] {
  const file = (name: string, text: string | Buffer): TarEntry => {
    const data = Buffer.from(text);
    return { name, kind: "file", mode: 0o644, size: data.length, full: "", data };
  };
  const dir = (name: string, mode = 0o755): TarEntry => ({
    name,
    kind: "dir",
    mode,
    size: 0,
    full: "",
  });
  const entries = [
    dir("etc/"),
    file("etc/group", "root:x:0:\nnonroot:x:65532:\n"),
    file(
      "etc/passwd",
      "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    ),
    dir("home/"),
    dir("tmp/", 0o1777),
  ];
  if (fs.existsSync(CA_FILE))
    entries.push(
      dir("etc/ssl/"),
      dir("etc/ssl/certs/"),
      file(CA_FILE.slice(1), fs.readFileSync(CA_FILE)),
    );
  return entries.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** The base image's manifest and config, its layers linked into `layout`. */
async function baseImage(base: { layout: string; ref?: string }, layout: string, arch: string) {
  const dir = base.layout;
  const { manifest } = await findImage(dir, base.ref, arch);
  const config = JSON.parse((await readBlob(dir, manifest.config)).toString()) as ImageConfig;
  if (config.architecture !== arch)
    throw new PyportError(
      "E_USAGE",
      `the base image ${dir}${base.ref ? `:${base.ref}` : ""} is for ${config.architecture}, not ${arch}`,
      {
        hint: "Use a base image for the runtime's machine.",
      },
    );
  for (const l of manifest.layers) await linkBlob(layout, l.digest, await verifyBlobFile(dir, l));
  return { manifest, config };
}

/** The image's entrypoint paths: a relative first word is inside the bundle. */
const inImage = (word: string) =>
  word.includes("/") && !word.startsWith("/") ? `${IMAGE_ROOT}/${word}` : word;

/** Writes the image of `input` into the (new, empty) directory `layout`. */
export async function writeImage(input: ImageInput, layout: string): Promise<ImageResult> {
  const arch = ARCH[input.machine] ?? input.machine;
  const created = new Date(archiveEpoch() * 1000).toISOString().replace(".000Z", "Z");
  const base = input.base ? await baseImage(input.base, layout, arch) : undefined;
  const groups = await groupBundle({
    bundle: input.bundle,
    site: input.site,
    project: input.name,
    prefix: IMAGE_ROOT.slice(1),
  });
  const built: { group: string; layer: BuiltLayer }[] = [];
  if (!base) built.push({ group: "base", layer: await writeLayer(layout, scratchEntries()) });
  for (const group of LAYER_GROUPS)
    if (groups[group].length) built.push({ group, layer: await writeLayer(layout, groups[group]) });

  const s = input.service;
  const baseEnv = base?.config.config.Env ?? [];
  const env = new Map(baseEnv.map((e) => [e.split("=")[0], e.slice(e.indexOf("=") + 1)]));
  env.set("PATH", `${IMAGE_ROOT}/bin:${env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin"}`);
  if (!base) env.set("SSL_CERT_FILE", CA_FILE);
  for (const [k, v] of Object.entries(s.env)) env.set(k, v);
  const config: ImageConfig = {
    created,
    architecture: arch,
    os: "linux",
    config: {
      User: IMAGE_USER,
      Env: [...env].map(([k, v]) => `${k}=${v}`),
      Entrypoint: input.command.map((w, i) => (i === 0 ? inImage(w) : w)),
      Cmd: s.args,
      WorkingDir: s.workdir ? path.posix.join(IMAGE_ROOT, s.workdir) : IMAGE_ROOT,
      Labels: { ...base?.config.config.Labels, ...input.labels },
      StopSignal: s.stopSignal,
    },
    rootfs: {
      type: "layers",
      diff_ids: [...(base?.config.rootfs.diff_ids ?? []), ...built.map((b) => b.layer.diffId)],
    },
    history: [
      ...(base?.config.history ?? []),
      ...built.map((b) => ({ created, created_by: `pyport: ${b.group} layer` })),
    ],
  };
  if (s.ports.length)
    config.config.ExposedPorts = Object.fromEntries(
      s.ports.map((p) => [`${p.port}/${p.protocol}`, {}]),
    );
  const configDesc = await putBlob(layout, MEDIA.config, jsonBytes(config));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: configDesc,
    layers: [...(base?.manifest.layers ?? []), ...built.map((b) => b.layer.descriptor)],
  };
  const manifestDesc = await putBlob(layout, MEDIA.manifest, jsonBytes(manifest));
  const sbom = await writeSbomArtifact(layout, input.sbom, manifestDesc, created);
  await writeIndex(
    layout,
    [{ ...manifestDesc, annotations: { [REF_NAME]: input.version } }, sbom],
    { [PROJECT_ANNOTATION]: input.name },
  );
  return {
    manifest: manifestDesc,
    config: configDesc,
    layers: built.map((b) => ({
      group: b.group,
      digest: b.layer.descriptor.digest,
      size: b.layer.descriptor.size,
      diffId: b.layer.diffId,
      cached: b.layer.cached,
    })),
    sbom,
    ref: input.version,
  };
}

/** The SBOM as an OCI 1.1 artifact manifest whose subject is the image. */
async function writeSbomArtifact(
  layout: string,
  sbom: Buffer,
  subject: Descriptor,
  created: string,
): Promise<Descriptor> {
  const empty = await putBlob(layout, MEDIA.empty, Buffer.from("{}"));
  const layer = await putBlob(layout, MEDIA.cyclonedx, sbom);
  layer.annotations = { "org.opencontainers.image.title": "sbom.cdx.json" };
  const artifact: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    artifactType: MEDIA.cyclonedx,
    config: { ...empty, data: "e30=" },
    layers: [layer],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { "org.opencontainers.image.created": created },
  };
  const desc = await putBlob(layout, MEDIA.manifest, jsonBytes(artifact));
  return { ...desc, artifactType: MEDIA.cyclonedx };
}
