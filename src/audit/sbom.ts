/**
 * CycloneDX 1.5 JSON SBOM (https://cyclonedx.org/docs/1.5/json/) for the audited components:
 * name, version, licence (SPDX id or expression), sha256 and a package URL where one exists.
 * Deterministic for the same tree: the serial number derives from the component hashes and
 * no timestamp is written unless SOURCE_DATE_EPOCH is set.
 */
import { createHash } from "node:crypto";
import { PYPORT_VERSION } from "../version.js";
import type { Component } from "./components.js";
import { ids, isKnownId, parseExpression } from "./spdx.js";

type SbomComponent = Omit<Component, "expr">;

function licenses(c: SbomComponent): unknown[] {
  if (c.license === "NOASSERTION") return [];
  const single = ids(parseExpression(c.license));
  if (single.length === 1) {
    const id = single[0];
    return [
      {
        license:
          isKnownId(id) && !id.startsWith("LicenseRef-")
            ? { id }
            : { name: id.replace(/^LicenseRef-/, "") },
      },
    ];
  }
  return [{ expression: c.license }];
}

function purl(c: SbomComponent): string | undefined {
  const v = c.version ? `@${encodeURIComponent(c.version)}` : "";
  if (c.kind === "distribution")
    return `pkg:pypi/${c.name.toLowerCase().replace(/[-_.]+/g, "-")}${v}`;
  if (c.kind === "interpreter") return `pkg:generic/cpython${v}`;
  if (c.kind === "library" && c.version) return `pkg:deb/debian/${c.name}${v}`;
  return undefined;
}

export function cycloneDx(targetName: string, components: readonly SbomComponent[]): object {
  const list = components.map((c) => ({
    type:
      c.kind === "distribution" ? "library" : c.kind === "interpreter" ? "application" : "library",
    "bom-ref": `${c.kind}:${c.name}${c.version ? `@${c.version}` : ""}:${c.path}`,
    name: c.name,
    ...(c.version ? { version: c.version } : {}),
    licenses: licenses(c),
    ...(c.sha256 ? { hashes: [{ alg: "SHA-256", content: c.sha256 }] } : {}),
    ...(purl(c) ? { purl: purl(c) } : {}),
    properties: [
      { name: "pyport:path", value: c.path },
      ...(c.hashedFile ? [{ name: "pyport:hashed-file", value: c.hashedFile }] : []),
    ],
  }));
  const digest = createHash("sha256").update(JSON.stringify(list)).digest("hex");
  const serial = `urn:uuid:${digest.slice(0, 8)}-${digest.slice(8, 12)}-5${digest.slice(13, 16)}-${((parseInt(digest[16], 16) & 3) | 8).toString(16)}${digest.slice(17, 20)}-${digest.slice(20, 32)}`;
  const epoch = process.env.SOURCE_DATE_EPOCH;
  return {
    bomFormat: "CycloneDX",
    specVersion: "1.5",
    serialNumber: serial,
    version: 1,
    metadata: {
      ...(epoch && /^\d+$/.test(epoch)
        ? { timestamp: new Date(Number(epoch) * 1000).toISOString() }
        : {}),
      tools: { components: [{ type: "application", name: "pyport", version: PYPORT_VERSION }] },
      component: { type: "application", name: targetName, "bom-ref": "target" },
    },
    components: list,
  };
}
