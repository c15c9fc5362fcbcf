/**
 * The code's shape, as docs/architecture.md states it: no folder of src/ imports from a folder
 * that imports it back (directly or through others), the CLI only uses what the package entry
 * exports, and no source file grows past ~500 lines.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as api from "../src/index.js";

const SRC = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../src");

function sources(): { folder: string; file: string; text: string }[] {
  const out: { folder: string; file: string; text: string }[] = [];
  for (const folder of fs.readdirSync(SRC)) {
    const dir = path.join(SRC, folder);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const name of fs.readdirSync(dir))
      if (name.endsWith(".ts"))
        out.push({
          folder,
          file: `${folder}/${name}`,
          text: fs.readFileSync(path.join(dir, name), "utf8"),
        });
  }
  return out;
}

/** Folders imported by each folder (`../x/…` specifiers, static or dynamic). */
function folderGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const { folder, text } of sources()) {
    const deps = graph.get(folder) ?? new Set<string>();
    for (const m of text.matchAll(/(?:from |import\()"\.\.\/([a-z-]+)\//g))
      if (m[1] !== folder) deps.add(m[1]);
    graph.set(folder, deps);
  }
  return graph;
}

test("no folder imports a folder that imports it back, directly or through others", () => {
  const graph = folderGraph();
  const cycles: string[] = [];
  const visit = (node: string, trail: string[]) => {
    for (const next of graph.get(node) ?? []) {
      if (next === trail[0]) cycles.push([...trail, next].join(" -> "));
      else if (!trail.includes(next)) visit(next, [...trail, next]);
    }
  };
  for (const folder of graph.keys()) visit(folder, [folder]);
  assert.deepEqual(cycles, []);
});

test("every function the CLI calls is exported from the package entry", () => {
  const exported = new Set(Object.keys(api));
  const missing: string[] = [];
  for (const { file, text } of sources().filter((s) => s.folder === "cli")) {
    for (const m of text.matchAll(
      /(?:const \{([^}]+)\} = await import\(|import \{([^}]+)\} from )"\.\.\/(?!errors|util|version)[a-z-]+\/[a-z-]+\.js"/g,
    )) {
      for (const raw of (m[1] ?? m[2]).split(",")) {
        const name = raw.trim().replace(/^type\s+/, "");
        if (name && !raw.trim().startsWith("type ") && !exported.has(name))
          missing.push(`${file}: ${name}`);
      }
    }
  }
  assert.deepEqual(missing, []);
});

test("no source file over 500 lines", () => {
  const long = sources()
    .map((s) => ({ file: s.file, lines: s.text.split("\n").length }))
    .filter((s) => s.lines > 500)
    .map((s) => `${s.file}: ${s.lines} lines`);
  assert.deepEqual(long, []);
});
