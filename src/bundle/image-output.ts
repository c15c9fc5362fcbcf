/**
 * The build's OCI outputs: the image layout (`--format oci`) and/or its tar (`oci-archive`),
 * written from the finished bundle into the build's temp dir. The image runs the project's
 * first service (or, without a spec, its console script); its labels come from the project,
 * its git revision and the audit's licences.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { writeTarArchive } from "../archive/tar-write.js";
import type { Component } from "../audit/components.js";
import { extractArchive } from "../archive/extract.js";
import { writeImage, type ImageResult } from "../oci/image.js";
import { splitImageRef } from "../oci/layout.js";
import { execFile } from "../util/exec.js";
import type { Reporter } from "../util/reporter.js";
import type { EntryPoint } from "./entry-points.js";
import type { BundlePlan } from "./plan.js";
import { defaultService, serviceCommand } from "./service-spec.js";

/** The commit of the project's git checkout, when it is one and git is installed. */
async function gitRevision(dir: string): Promise<string | undefined> {
  const r = await execFile("git", ["-C", dir, "rev-parse", "HEAD"]).catch(() => undefined);
  return r?.code === 0 ? r.stdout.trim() : undefined;
}

/** The image's standard labels. */
async function labels(plan: BundlePlan, components: Component[]): Promise<Record<string, string>> {
  const licences = [
    ...new Set(components.map((c) => c.license).filter((l) => l && l !== "NOASSERTION")),
  ];
  const out: Record<string, string> = {
    "org.opencontainers.image.title": plan.name,
    "org.opencontainers.image.version": plan.version,
    "org.opencontainers.image.licenses": licences
      .map((l) => (/\s/.test(l) ? `(${l})` : l))
      .join(" AND "),
  };
  const revision = await gitRevision(plan.projectDir);
  if (revision) out["org.opencontainers.image.revision"] = revision;
  if (plan.sourceUrl) out["org.opencontainers.image.source"] = plan.sourceUrl;
  return out;
}

/** The base image's layout: an archive is first unpacked (checked, inside `tmp`). */
async function baseLayout(base: string, tmp: string): Promise<{ layout: string; ref?: string }> {
  const { path: file, ref } = splitImageRef(base);
  if (!(await fsp.stat(file)).isFile()) return { layout: file, ref };
  const dir = path.join(tmp, "base-image");
  await extractArchive(file, dir);
  return { layout: dir, ref };
}

export async function writeImageOutputs(
  plan: BundlePlan,
  ctx: {
    bundle: string;
    site: string;
    tmp: string;
    machine: string;
    entryPoints: EntryPoint[];
    components: Component[];
    reporter?: Reporter;
  },
): Promise<{ layout: string; image: ImageResult; archive?: string }> {
  const service = plan.services[0] ?? defaultService(plan.name);
  const command = serviceCommand(
    service,
    ctx.entryPoints.map((e) => e.name),
    plan.name,
  );
  const layout = path.join(ctx.tmp, "image.oci");
  await fsp.mkdir(layout);
  ctx.reporter?.step(
    `writing the OCI image (${plan.image?.base ? `on ${plan.image.base}` : "from scratch"}; runs ${command.join(" ")})`,
  );
  const image = await writeImage(
    {
      bundle: ctx.bundle,
      site: ctx.site,
      name: plan.name,
      version: plan.version,
      machine: ctx.machine,
      service,
      command,
      labels: await labels(plan, ctx.components),
      sbom: await fsp.readFile(path.join(ctx.bundle, "sbom.cdx.json")),
      base: plan.image?.base ? await baseLayout(plan.image.base, ctx.tmp) : undefined,
    },
    layout,
  );
  let archive: string | undefined;
  if (plan.formats.includes("oci-archive")) {
    archive = path.join(ctx.tmp, "image.oci.tar");
    await writeTarArchive(layout, "", archive, "none");
  }
  return { layout, image, archive };
}
