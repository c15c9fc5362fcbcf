/**
 * Resolves every DT_NEEDED inside the audited tree the way glibc's loader does (ld.so(8)):
 * DT_RPATH of the object and then of its loaders up the chain (only when the object itself has no
 * DT_RUNPATH; an RPATH next to a RUNPATH is ignored), then the loader's --library-path (bundled libc), then the object's DT_RUNPATH.
 * `$ORIGIN` is the directory of the object's real file. Absolute entries point outside the tree
 * and never resolve here. What is not found inside is left to the system, if the policy allows.
 */
import * as path from "node:path";
import type { ElfScan } from "./elf-scan.js";
import type { Tree } from "./tree.js";

export interface Resolution {
  /** Per ELF file: soname → file inside the tree (relative path). */
  inside: Map<string, Map<string, string>>;
  /** NEEDED entries found nowhere in the tree: importer, soname, and the chain that loaded it. */
  outside: { importer: string; soname: string; chain: string[] }[];
}

function expand(list: string | undefined, originDir: string): string[] {
  if (!list) return [];
  return list
    .split(":")
    .filter(Boolean)
    .map((e) =>
      /^\$(?:ORIGIN|\{ORIGIN\})(?=\/|$)/.test(e)
        ? path.posix.normalize(e.replace(/^\$(?:ORIGIN|\{ORIGIN\})/, originDir || "."))
        : `/${e}`,
    );
}

/** `libpath`: directories (relative to the root) that the loader searches for every object. */
export function resolveNeeded(tree: Tree, libpath: readonly string[] = []): Resolution {
  const byRel = new Map(tree.elves.map((e) => [e.rel, e]));
  const exists = (rel: string): string | undefined => {
    if (rel.startsWith("/") || rel.startsWith("..")) return undefined;
    if (byRel.has(rel)) return rel;
    const target = tree.links.get(rel);
    return target && byRel.has(target) ? target : undefined;
  };
  const inside = new Map<string, Map<string, string>>();
  const failed = new Map<string, { importer: string; soname: string; chain: string[] }>();
  const visited = new Set<string>();

  const visit = (scan: ElfScan, inherited: string[], chain: string[]): void => {
    const key = `${scan.rel}|${inherited.join(":")}`;
    if (visited.has(key)) return;
    visited.add(key);
    const originDir = path.posix.dirname(scan.rel) === "." ? "" : path.posix.dirname(scan.rel);
    const own = scan.elf.runpath ? [] : expand(scan.elf.rpath, originDir);
    const dirs = [
      ...own,
      ...(scan.elf.runpath ? [] : inherited),
      ...libpath,
      ...expand(scan.elf.runpath, originDir),
    ];
    const found = inside.get(scan.rel) ?? new Map<string, string>();
    inside.set(scan.rel, found);
    for (const soname of scan.elf.needed) {
      let hit: string | undefined;
      for (const d of dirs) if ((hit = exists(d ? `${d}/${soname}` : soname))) break;
      if (!hit) {
        const k = `${scan.rel}|${soname}`;
        if (!failed.has(k)) failed.set(k, { importer: scan.rel, soname, chain });
        continue;
      }
      found.set(soname, hit);
      // Ancestors' RPATHs stay in the chain (an object with RUNPATH contributes none of its own).
      visit(byRel.get(hit)!, [...own, ...inherited], [...chain, hit]);
    }
  };
  // Roots: executables, and objects no other object needs (extension modules, plugins). A library
  // is checked in the context its importers load it in, as the loader would.
  for (const scan of tree.elves) visit(scan, [], [scan.rel]);
  const needed = new Set([...inside.values()].flatMap((m) => [...m.values()]));
  inside.clear();
  failed.clear();
  visited.clear();
  for (const scan of tree.elves)
    if (scan.elf.interpreter || !needed.has(scan.rel)) visit(scan, [], [scan.rel]);
  // A NEEDED found in some context counts as resolved (the loader reuses an object once loaded).
  const outside = [...failed.values()].filter((f) => !inside.get(f.importer)?.has(f.soname));
  return { inside, outside };
}
