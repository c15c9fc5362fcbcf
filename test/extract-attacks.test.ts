/**
 * The extractor against hand-made hostile archives: one test per attack shape, then thousands of
 * random archives from a small alphabet of names and link targets, after each of which nothing
 * may exist outside the destination (inside a sentinel directory) and every symlink inside must
 * resolve inside.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { extractArchive } from "../src/archive/extract.js";
import { PyportError } from "../src/errors.js";
import { tmpDir } from "./helpers.js";
import { craftTar, type CraftEntry } from "./tar-craft.js";

/** sentinel/l1/l2/dest: escapes up to three levels stay inside the sentinel, where we look. */
function arena(): { sentinel: string; dest: string } {
  const sentinel = tmpDir("sentinel");
  fs.mkdirSync(path.join(sentinel, "l1", "l2"), { recursive: true });
  return { sentinel, dest: path.join(sentinel, "l1", "l2", "dest") };
}

/** Every path below `dir`, relative; symlinks are listed, never followed (unlike readdir's recursive mode). */
function walk(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? path.join(rel, e.name) : e.name;
    out.push(r);
    if (e.isDirectory()) out.push(...walk(dir, r));
  }
  return out;
}

/** Every path below `sentinel` that is not `l1`, `l1/l2`, or inside `l1/l2/dest`. */
function strays(sentinel: string): string[] {
  return walk(sentinel).filter(
    (rel) =>
      !["l1", path.join("l1", "l2")].includes(rel) &&
      !rel.startsWith(path.join("l1", "l2", "dest")),
  );
}

async function attack(entries: CraftEntry[], pattern: RegExp): Promise<void> {
  const { sentinel, dest } = arena();
  const file = path.join(sentinel, "evil.tar");
  fs.writeFileSync(file, craftTar(entries));
  await assert.rejects(extractArchive(file, dest), (err: PyportError) => {
    assert.equal(err.code, "E_UNSAFE_ARCHIVE", err.message);
    assert.match(err.message, pattern);
    return true;
  });
  fs.rmSync(file);
  assert.deepEqual(strays(sentinel), [], "nothing outside the destination");
}

test("link chain: a -> ., a/a/x -> ../.., hard link a/a/x/FILE -> f", () =>
  attack(
    [
      { name: "f", data: "pwned" },
      { name: "a", type: "2", link: "." },
      { name: "a/a/x", type: "2", link: "../.." },
      { name: "a/a/x/FILE", type: "1", link: "f" },
    ],
    /a\/a\/x is stored below the symlink a/,
  ));

test("link chain whose parts each look harmless, without entries below links", () =>
  attack(
    [
      { name: "a", type: "2", link: "." },
      { name: "b", type: "2", link: "a/a/a/.." },
    ],
    /symlink b -> a\/a\/a\/\.\. points outside/,
  ));

test("a directory replaced by a link, then a file through it", () =>
  attack(
    [
      { name: "d", type: "5" },
      { name: "d", type: "2", link: "../.." },
      { name: "d/pwned", data: "x" },
    ],
    /d is stored twice, as a dir and as a symlink/,
  ));

test("a file's parent directory replaced by a link after the file", () =>
  attack(
    [
      { name: "d/ok", data: "x" },
      { name: "d", type: "2", link: "." },
    ],
    /d is stored twice/,
  ));

test("an absolute link target", () =>
  attack([{ name: "l", type: "2", link: "/tmp" }], /is absolute/));

test("a file over an existing symlink", () =>
  attack(
    [
      { name: "l", type: "2", link: "target" },
      { name: "l", data: "x" },
    ],
    /l is stored twice, as a symlink and as a file/,
  ));

test("a hard link to outside, to a symlink, to a directory and to a later file", async () => {
  await attack([{ name: "h", type: "1", link: "../../pwned" }], /'\.\.'/);
  await attack([{ name: "h", type: "1", link: "/etc/passwd" }], /absolute/);
  await attack(
    [
      { name: "s", type: "2", link: "f" },
      { name: "f", data: "x" },
      { name: "h", type: "1", link: "s" },
    ],
    /hardlink h -> s does not name a regular file/,
  );
  await attack(
    [
      { name: "d", type: "5" },
      { name: "h", type: "1", link: "d" },
    ],
    /does not name a regular file/,
  );
  await attack(
    [
      { name: "h", type: "1", link: "f" },
      { name: "f", data: "x" },
    ],
    /does not name a regular file stored before it/,
  );
});

test("a hard link through a symlinked directory", () =>
  attack(
    [
      { name: "d/f", data: "x" },
      { name: "l", type: "2", link: "d" },
      { name: "h", type: "1", link: "l/f" },
    ],
    /does not name a regular file/,
  ));

test("'..' through a pax path, a pax linkpath and GNU long names", async () => {
  await attack([{ name: "innocent", pax: { path: "../../../pwned" }, data: "x" }], /'\.\.'/);
  await attack(
    [{ name: "innocent", type: "2", pax: { linkpath: "../../../../x" } }],
    /points outside/,
  );
  await attack(
    [{ name: `${"d/".repeat(60)}../`.repeat(3) + "pwned", gnuLong: true, data: "x" }],
    /'\.\.'/,
  );
  await attack(
    [{ name: "l".repeat(120), type: "2", link: "../".repeat(50), gnuLong: true }],
    /points outside/,
  );
});

test("a symlink loop is refused, not followed forever", () =>
  attack(
    [
      { name: "a", type: "2", link: "b" },
      { name: "b", type: "2", link: "a" },
    ],
    /points outside/,
  ));

test("the same harmless shapes still extract", async () => {
  const { dest, sentinel } = arena();
  const file = path.join(sentinel, "ok.tar");
  fs.writeFileSync(
    file,
    craftTar([
      { name: "d/f", data: "one" },
      { name: "d/f", data: "two" },
      { name: "d/h", type: "1", link: "d/f" },
      { name: "l", type: "2", link: "d/f" },
      { name: "m", type: "2", link: "d/../l" },
    ]),
  );
  await extractArchive(file, dest);
  assert.equal(fs.readFileSync(path.join(dest, "m"), "utf8"), "two");
  assert.equal(fs.readFileSync(path.join(dest, "d/h"), "utf8"), "two");
});

/** A small deterministic PRNG (mulberry32), so a failure names a seed that reproduces it. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = [
  "a",
  "b",
  "a/a",
  "a/b",
  "a/a/x",
  "a/a/x/f",
  "b/a",
  "b/a/f",
  "x",
  "x/f",
  "f",
  "./a/x",
];
const TARGETS = [
  ".",
  "..",
  "../..",
  "../../..",
  "a",
  "a/..",
  "a/a",
  "b/../..",
  "x",
  "f",
  "a/a/x",
  "x/../..",
  "/tmp",
];
const TYPES = ["0", "0", "5", "2", "2", "2", "1"];

test("5000 random archives of links and files: nothing ever lands outside", async () => {
  const { sentinel, dest } = arena();
  const file = path.join(sentinel, "l1", "random.tar");
  let extracted = 0;
  for (let seed = 1; seed <= 5000; seed++) {
    const rnd = prng(seed);
    const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
    const entries: CraftEntry[] = [];
    for (let i = 0, n = 1 + Math.floor(rnd() * 6); i < n; i++) {
      const type = pick(TYPES);
      entries.push({
        name: pick(NAMES),
        type,
        link:
          type === "2" ? pick(TARGETS) : type === "1" ? pick([...NAMES, ...TARGETS]) : undefined,
        data: type === "0" ? `seed ${seed}` : undefined,
      });
    }
    fs.writeFileSync(file, craftTar(entries));
    try {
      await extractArchive(file, dest);
      extracted++;
    } catch (err) {
      if (!(err instanceof PyportError))
        assert.fail(`seed ${seed}: ${(err as Error).message} ${JSON.stringify(entries)}`);
    }
    const outside = strays(sentinel).filter((rel) => rel !== path.join("l1", "random.tar"));
    assert.deepEqual(outside, [], `seed ${seed}: ${JSON.stringify(entries)}`);
    if (fs.existsSync(dest))
      for (const rel of walk(dest)) {
        const full = path.join(dest, rel);
        if (!fs.lstatSync(full).isSymbolicLink()) continue;
        let real: string;
        try {
          real = fs.realpathSync(full);
        } catch {
          continue; // dangling inside the tree: harmless
        }
        assert.ok(
          real === dest || real.startsWith(dest + path.sep),
          `seed ${seed}: ${rel} resolves to ${real} ${JSON.stringify(entries)}`,
        );
      }
    fs.rmSync(dest, { recursive: true, force: true });
  }
  assert.ok(!fs.existsSync("/tmp/f") || fs.readFileSync("/tmp/f", "utf8").indexOf("seed") !== 0);
  assert.ok(
    extracted > 500,
    `only ${extracted} of 5000 archives were accepted: the alphabet is too hostile to test anything`,
  );
});
