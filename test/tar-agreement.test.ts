/**
 * One reading of a tar: the same crafted payloads go through the onefile stub's reader (the
 * native stub, PYPORT_ONEFILE_COMMAND="extract DIR") and through pyport's TypeScript reader in
 * its strict profile (what `pyport audit` of a onefile uses). Each payload is refused by both, or
 * accepted by both with the same tree (names, kinds, contents, link targets, modes).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, test } from "node:test";
import { extractArchive } from "../src/archive/extract.js";
import { assembleOnefile, onefileStub } from "../src/onefile/onefile.js";
import { PyportError } from "../src/errors.js";
import { run, tmpDir } from "./helpers.js";
import { craftTar, header, paxBody, type CraftEntry } from "./tar-craft.js";

let stub: string | undefined;
let skipReason = "";
before(() => {
  try {
    stub = onefileStub();
  } catch (err) {
    skipReason = `no onefile stub was built (${(err as Error).message})`;
  }
  if (stub && run("sh", ["-c", "command -v zstd"]).code !== 0) {
    stub = undefined;
    skipReason = "zstd is not installed (apt-get install zstd)";
  }
});

/** name → "d", "f <mode> <content>" or "l <target>", for every path below `dir`. */
function describeTree(dir: string, rel = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    const full = path.join(dir, r);
    if (e.isSymbolicLink()) out[r] = `l ${fs.readlinkSync(full)}`;
    else if (e.isDirectory()) {
      out[r] = `d ${(fs.statSync(full).mode & 0o777).toString(8)}`;
      Object.assign(out, describeTree(dir, r));
    } else
      out[r] = `f ${(fs.statSync(full).mode & 0o777).toString(8)} ${fs.readFileSync(full, "utf8")}`;
  }
  return out;
}

type Outcome = { accepted: true; tree: Record<string, string> } | { accepted: false; why: string };

async function throughBoth(tar: Buffer): Promise<{ stub: Outcome; ts: Outcome }> {
  const dir = tmpDir("agree");
  fs.writeFileSync(path.join(dir, "payload.tar"), tar);
  const z = run("zstd", ["-q", "-3", path.join(dir, "payload.tar"), "-o", path.join(dir, "p.zst")]);
  assert.equal(z.code, 0, z.stderr);
  const file = path.join(dir, "agree-onefile");
  await assembleOnefile({
    stub: stub!,
    payload: path.join(dir, "p.zst"),
    meta: { name: "agree", version: "1", entry: "bin/x", unpackedBytes: tar.length },
    dest: file,
  });
  const stubDest = path.join(dir, "stub-out");
  const r = run(file, [], {
    env: { ...process.env, PYPORT_ONEFILE_COMMAND: `extract ${stubDest}` },
  });
  const stubOutcome: Outcome =
    r.code === 0
      ? { accepted: true, tree: describeTree(stubDest) }
      : { accepted: false, why: r.stderr.trim() };
  if (r.code !== 0) assert.ok(!fs.existsSync(stubDest), "a refusing stub leaves nothing");
  const tsDest = path.join(dir, "ts-out");
  let tsOutcome: Outcome;
  try {
    await extractArchive(path.join(dir, "payload.tar"), tsDest, { strict: true });
    tsOutcome = { accepted: true, tree: describeTree(tsDest) };
  } catch (err) {
    if (!(err instanceof PyportError)) throw err;
    tsOutcome = { accepted: false, why: err.message };
  }
  return { stub: stubOutcome, ts: tsOutcome };
}

const base: CraftEntry[] = [
  { name: "bin/", type: "5", mode: 0o755 },
  { name: "bin/x", data: "#!/bin/sh\n", mode: 0o755 },
  { name: "bin/y", type: "2", link: "x" },
];
const longName = `lib/${"n".repeat(120)}.txt`;

const CASES: { name: string; tar: () => Buffer; accepted: boolean }[] = [
  {
    name: "pyport's own shape: dirs, files, a symlink, a pax path",
    accepted: true,
    tar: () =>
      craftTar([
        ...base,
        { name: "lib/", type: "5" },
        { name: "lib/t", type: "2", link: "../bin/x" },
        { name: "ignored", pax: { path: longName }, data: "long", mode: 0o600 },
      ]),
  },
  {
    name: "a directory given twice, a file name with a trailing slash",
    accepted: true,
    tar: () => craftTar([...base, { name: "bin/", type: "5" }, { name: "bin/z/", data: "z" }]),
  },
  {
    name: "a pax size record (the stub used to ignore it)",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/s", data: "hidden", pax: { size: "0" } }]),
  },
  {
    name: "a pax mtime record",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/s", data: "s", pax: { mtime: "1" } }]),
  },
  {
    name: "GNU long names",
    accepted: false,
    tar: () => craftTar([...base, { name: longName, data: "g", gnuLong: true }]),
  },
  {
    name: "a hard link",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/h", type: "1", link: "bin/x" }]),
  },
  {
    name: "a ustar prefix field",
    accepted: false,
    tar: () => craftTar([...base, { name: "x", prefix: "bin", data: "p" }]),
  },
  {
    name: "a base-256 size",
    accepted: false,
    tar: () =>
      craftTar([
        ...base,
        {
          name: "bin/b",
          data: "b",
          mutate: (h) => {
            h.fill(0, 124, 136);
            h[124] = 0x80;
            h[135] = 1;
          },
        },
      ]),
  },
  {
    name: "a size field with leading spaces",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/s", data: "12345", sizeField: "      00005\0" }]),
  },
  {
    name: "a size field with trailing garbage",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/s", data: "12345", sizeField: "0000000005x\0" }]),
  },
  {
    name: "an entry after a single zero block",
    accepted: false,
    tar: () =>
      Buffer.concat([
        craftTar(base, { noEnd: true }),
        Buffer.alloc(512),
        craftTar([{ name: "bin/after", data: "hidden" }]),
      ]),
  },
  {
    name: "no end-of-archive block",
    accepted: false,
    tar: () => craftTar(base, { noEnd: true }),
  },
  {
    name: "two pax headers in a row",
    accepted: false,
    tar: () => {
      const body = paxBody({ path: "bin/p" });
      const pax = Buffer.concat([
        header("PaxHeader", "x", body.length),
        body,
        Buffer.alloc(512 - body.length),
      ]);
      return Buffer.concat([
        craftTar(base, { noEnd: true }),
        pax,
        craftTar([{ name: "q", pax: { path: "bin/q" }, data: "q" }]),
      ]);
    },
  },
  {
    name: "a pax header with no entry after it",
    accepted: false,
    tar: () => {
      const body = paxBody({ path: "bin/p" });
      return Buffer.concat([
        craftTar(base, { noEnd: true }),
        header("PaxHeader", "x", body.length),
        body,
        Buffer.alloc(512 - body.length),
        Buffer.alloc(1024),
      ]);
    },
  },
  {
    name: "a name that is not UTF-8",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/latin", data: "l", mutate: (h) => (h[4] = 0xe9) }]),
  },
  {
    name: "a pax path with a NUL",
    accepted: false,
    tar: () => craftTar([...base, { name: "n", data: "n", pax: { path: "bin/a\0b" } }]),
  },
  {
    name: "a file given twice",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/x", data: "second" }]),
  },
  {
    name: "a file, then a directory of the same name",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/x", type: "5" }]),
  },
  {
    name: "a file whose parent has no directory entry",
    accepted: false,
    tar: () => craftTar([...base, { name: "nodir/f", data: "f" }]),
  },
  {
    name: "a symlink with '..' after a name",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/l", type: "2", link: "x/../../.." }]),
  },
  {
    name: "a symlink climbing above the root",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/l", type: "2", link: "../../etc" }]),
  },
  {
    name: "a './' component",
    accepted: false,
    tar: () => craftTar([...base, { name: "./bin/dot", data: "d" }]),
  },
  {
    name: "a global pax header",
    accepted: false,
    tar: () => craftTar([...base, { name: "g", type: "g", data: "11 path=x\n" }]),
  },
  {
    name: "a directory with data",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/d", type: "5", data: "data" }]),
  },
  {
    name: "an entry below a symlink",
    accepted: false,
    tar: () => craftTar([...base, { name: "bin/y/f", data: "f" }]),
  },
];

for (const c of CASES) {
  test(`both readers ${c.accepted ? "accept" : "refuse"}: ${c.name}`, async (t) => {
    if (!stub) return t.skip(skipReason);
    const { stub: s, ts } = await throughBoth(c.tar());
    assert.equal(s.accepted, c.accepted, `stub: ${JSON.stringify(s)}`);
    assert.equal(ts.accepted, c.accepted, `TypeScript: ${JSON.stringify(ts)}`);
    if (s.accepted && ts.accepted) assert.deepEqual(ts.tree, s.tree);
  });
}
