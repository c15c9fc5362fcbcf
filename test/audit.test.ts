/**
 * `pyport audit` on real binaries: the machine's libraries (checked against objdump -T), gcc
 * fixtures with known symbol versions, a missing library, RPATH vs RUNPATH (checked against
 * what the real loader does), leaks, hardening, licences, SBOM, archives and the CLI.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { audit } from "../src/audit/audit.js";
import { scanElf } from "../src/audit/elf-scan.js";
import { distroTable } from "../src/audit/floors.js";
import { copyleftOf, isDenied, parseExpression } from "../src/audit/spdx.js";
import { readElfFile, editElfFile } from "../src/elf/file.js";
import { createRuntime } from "../src/runtime/create.js";
import { readManifest } from "../src/runtime/manifest.js";
import { pyport, run, sharedPython, tmpDir, useTestCache } from "./helpers.js";

useTestCache();

const hasGcc = run("sh", ["-c", "command -v gcc"]).code === 0;

/** Compiles C (or C++) source into `out` with extra flags; throws with the compiler's output on failure. */
function cc(out: string, source: string, flags: string[], lang: "c" | "c++" = "c"): void {
  const src = `${out}.${lang === "c" ? "c" : "cc"}`;
  fs.writeFileSync(src, source);
  const r = run(lang === "c" ? "gcc" : "g++", ["-O1", "-fPIC", "-o", out, src, ...flags]);
  if (r.code !== 0) throw new Error(`compiling ${src} failed: ${r.stderr}`);
  fs.rmSync(src);
}

/** (symbol, node) pairs of undefined versioned symbols, as objdump -T prints them. */
function objdumpUses(file: string): Set<string> {
  const out = new Set<string>();
  for (const line of run("objdump", ["-T", file]).stdout.split("\n")) {
    const m = /\*UND\*\s+\S+\s+\(([A-Za-z0-9_.]+)\)\s+(\S+)/.exec(line);
    if (m) out.add(`${m[2]}@${m[1]}`);
  }
  return out;
}

function libPath(soname: string): string | undefined {
  const m = run("sh", [
    "-c",
    `ldconfig -p | grep -m1 "^\\s*${soname} " | sed 's/.*=> //'`,
  ]).stdout.trim();
  return m || undefined;
}

describe("symbol versions agree with objdump -T", () => {
  test("the machine's libraries and interpreters", async () => {
    const files = ["libstdc++.so.6", "libssl.so.3", "libsqlite3.so.0", "libz.so.1"]
      .map(libPath)
      .filter((f): f is string => !!f);
    const py = await sharedPython();
    if (py) files.push(py.path);
    assert.ok(files.length >= 3, `expected system libraries to compare, found ${files.join(", ")}`);
    for (const file of files) {
      const scan = scanElf(path.basename(file), fs.readFileSync(file));
      const ours = new Set(scan.uses.flatMap((u) => u.symbols.map((s) => `${s}@${u.node}`)));
      assert.deepEqual(
        [...ours].sort(),
        [...objdumpUses(file)].sort(),
        `${file}: versioned imports differ from objdump -T`,
      );
    }
  });
});

describe("gcc fixtures", () => {
  let dir: string;
  before(() => {
    dir = tmpDir("audit-fixtures");
  });

  test("the GLIBC floor is set by the symbol that needs it; policies are node sets", async (t) => {
    if (!hasGcc) return t.skip("gcc is not installed (apt-get install gcc)");
    const lib = path.join(dir, "memfd", "lib", "libmemfd.so");
    fs.mkdirSync(path.dirname(lib), { recursive: true });
    cc(
      lib,
      '#define _GNU_SOURCE\n#include <sys/mman.h>\n#include <stdlib.h>\nint make(void) { void *p = reallocarray(0, 2, 8); free(p); return memfd_create("x", 0); }\n',
      ["-shared"],
    );
    const r = await audit(path.join(dir, "memfd"));
    assert.equal(r.floors.GLIBC, "2.27");
    assert.deepEqual(r.floorDetails.GLIBC!.setBy, [
      { path: "lib/libmemfd.so", symbols: ["memfd_create"] },
    ]);
    assert.deepEqual(
      r.findings.filter((f) => f.severity === "error"),
      [],
    );
    assert.ok(
      r.runsOn.find((x) => x.family === "RHEL")?.from === "8" &&
        r.runsOn.find((x) => x.family === "RHEL")?.notOn?.version === "7",
    );

    const strict = await audit(path.join(dir, "memfd"), { policy: "glibc-2.17" });
    const errors = strict.findings.filter((f) => f.code === "POLICY_VERSION");
    assert.ok(
      errors.some(
        (f) => f.path === "lib/libmemfd.so" && /memfd_create@GLIBC_2\.27/.test(f.message),
      ),
      JSON.stringify(errors),
    );
    assert.ok(errors.some((f) => /reallocarray@GLIBC_2\.26/.test(f.message)));
    assert.equal(
      (await audit(path.join(dir, "memfd"), { policy: "manylinux_2_28" })).findings.filter(
        (f) => f.severity === "error",
      ).length,
      0,
    );

    const cli = pyport(["audit", path.join(dir, "memfd"), "--policy", "glibc-2.17"]);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stdout, /POLICY_VERSION lib\/libmemfd\.so: needs memfd_create@GLIBC_2\.27/);
    assert.match(cli.stdout, /what to do: /);
  });

  test("C++: GLIBCXX/CXXABI floors match objdump", async (t) => {
    if (run("sh", ["-c", "command -v g++"]).code !== 0)
      return t.skip("g++ is not installed (apt-get install g++)");
    const lib = path.join(dir, "cxx", "libcxx.so");
    fs.mkdirSync(path.dirname(lib), { recursive: true });
    cc(
      lib,
      '#include <string>\n#include <stdexcept>\nstd::string greet(const std::string &n) { if (n.empty()) throw std::runtime_error("empty"); return "hi " + n; }\n',
      ["-shared"],
      "c++",
    );
    const r = await audit(path.join(dir, "cxx"));
    const expected = [...objdumpUses(lib)]
      .filter((u) => u.includes("@GLIBCXX_"))
      .map((u) => u.split("@GLIBCXX_")[1]);
    assert.ok(expected.length > 0);
    const max = expected
      .sort((a, b) =>
        a
          .split(".")
          .map(Number)
          .reduce((d, x, i) => d || x - Number(b.split(".")[i] ?? 0), 0),
      )
      .pop();
    assert.equal(r.floors.GLIBCXX, max);
  });

  test("a missing library is an error naming the importer; RPATH is inherited, RUNPATH is not — as the loader does", async (t) => {
    if (!hasGcc) return t.skip("gcc is not installed (apt-get install gcc)");
    for (const mode of ["rpath", "runpath"] as const) {
      const app = path.join(dir, `chain-${mode}`);
      fs.mkdirSync(path.join(app, "lib"), { recursive: true });
      cc(path.join(app, "lib", "libb.so"), "int b(void) { return 41; }\n", ["-shared"]);
      cc(path.join(app, "lib", "liba.so"), "int b(void);\nint a(void) { return b() + 1; }\n", [
        "-shared",
        `-L${app}/lib`,
        "-lb",
      ]);
      const flag = mode === "rpath" ? "-Wl,--disable-new-dtags" : "-Wl,--enable-new-dtags";
      cc(
        path.join(app, "main"),
        '#include <stdio.h>\nint a(void);\nint main(void) { printf("%d\\n", a()); return 0; }\n',
        [`-L${app}/lib`, "-la", flag, "-Wl,-rpath,$ORIGIN/lib", `-Wl,-rpath-link,${app}/lib`],
      );
      const ran = run(path.join(app, "main"), [], { env: { PATH: process.env.PATH } });
      const r = await audit(app);
      const missing = r.findings.filter((f) => f.code === "UNRESOLVED_LIBRARY");
      if (mode === "rpath") {
        assert.equal(
          ran.stdout.trim(),
          "42",
          `the loader resolves libb through main's RPATH: ${ran.stderr}`,
        );
        assert.deepEqual(missing, [], "audit agrees: libb resolves through the inherited RPATH");
      } else {
        assert.notEqual(ran.code, 0, "the loader does not inherit RUNPATH");
        assert.match(ran.stderr, /libb\.so/);
        assert.deepEqual(
          missing.map((f) => [f.path, /needs libb\.so/.test(f.message)]),
          [["lib/liba.so", true]],
          "audit agrees: liba cannot find libb",
        );
      }
    }
    const app = path.join(dir, "chain-runpath");
    await editElfFile(path.join(app, "lib", "liba.so"), { runpath: "$ORIGIN" });
    assert.equal(run(path.join(app, "main"), []).stdout.trim(), "42");
    assert.deepEqual(
      (await audit(app)).findings.filter((f) => f.code === "UNRESOLVED_LIBRARY"),
      [],
      "fixed by a RUNPATH on liba",
    );
  });

  test("hardening: executable stack and missing RELRO are warnings", async (t) => {
    if (!hasGcc) return t.skip("gcc is not installed (apt-get install gcc)");
    const app = path.join(dir, "weak");
    fs.mkdirSync(app);
    cc(path.join(app, "libstack.so"), "int f(void) { return 1; }\n", [
      "-shared",
      "-Wl,-z,execstack",
    ]);
    cc(path.join(app, "libnorelro.so"), "int g(void) { return 2; }\n", [
      "-shared",
      "-Wl,-z,norelro",
    ]);
    const r = await audit(app);
    const codes = r.findings.map((f) => `${f.severity}:${f.code}:${f.path}`);
    assert.ok(codes.includes("warning:EXEC_STACK:libstack.so"), codes.join("\n"));
    assert.ok(codes.includes("warning:NO_RELRO:libnorelro.so"), codes.join("\n"));
    assert.ok(!codes.some((c) => c.startsWith("warning:EXEC_STACK:libnorelro")));
  });
});

describe("runtimes", () => {
  test("a system-libc runtime: no errors, floor equals the manifest's; leaks are found when injected", async (t) => {
    const py = await sharedPython();
    if (!py) return t.skip("no CPython with a shared libpython found");
    const out = path.join(tmpDir("audit-rt"), "rt");
    await createRuntime({ source: { python: py.path }, out, profile: "minimal" });
    const m = await readManifest(out);
    const r = await audit(out, { hashes: true });
    assert.deepEqual(
      r.findings.filter((f) => f.severity === "error"),
      [],
    );
    assert.equal(r.kind, "runtime");
    assert.equal(r.floors.GLIBC, m.libc.glibcFloor);
    assert.ok(
      r.floorDetails.GLIBC!.setBy.every((s) => m.libc.floorSetBy.includes(s.path)),
      "the same files set the floor",
    );
    assert.deepEqual(
      r.findings.filter((f) => f.code.startsWith("LEAK")),
      [],
      "pyport's own runtime leaks no build path",
    );
    const cpython = r.components.find((c) => c.name === "CPython")!;
    assert.equal(cpython.license, "PSF-2.0");
    assert.equal(
      cpython.sha256,
      createHash("sha256")
        .update(fs.readFileSync(path.join(out, m.realInterpreter)))
        .digest("hex"),
    );

    // Inject leaks of every kind the audit knows.
    fs.writeFileSync(path.join(out, "bin", "tool"), `#!${py.path}\nprint(1)\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(out, "pyvenv.cfg"), "home = /root/.pyenv/versions/x/bin\n");
    const site = path.join(
      out,
      "lib",
      `python${py.probe.major}.${py.probe.minor}`,
      "site-packages",
    );
    fs.mkdirSync(path.join(site, "leaky-1.0.dist-info"), { recursive: true });
    fs.writeFileSync(
      path.join(site, "leaky-1.0.dist-info", "METADATA"),
      "Metadata-Version: 2.1\nName: leaky\nVersion: 1.0\n",
    );
    fs.writeFileSync(
      path.join(site, "leaky-1.0.dist-info", "direct_url.json"),
      '{"url": "file:///home/alice/src/leaky", "dir_info": {}}',
    );
    const libpython = m.grafted.find((g) => g.soname.startsWith("libpython"))!.file;
    await editElfFile(path.join(out, libpython), { runpath: "/opt/build/lib:$ORIGIN" });
    const leaks = (await audit(out, { buildPaths: ["/opt/build"] })).findings
      .filter((f) => f.code.startsWith("LEAK"))
      .map((f) => `${f.code} ${f.path}`);
    assert.deepEqual(leaks.sort(), [
      "LEAK_PATH lib/python3.X/site-packages/leaky-1.0.dist-info/direct_url.json".replace(
        "3.X",
        `${py.probe.major}.${py.probe.minor}`,
      ),
      "LEAK_PATH pyvenv.cfg",
      `LEAK_RPATH ${libpython}`,
      "LEAK_SHEBANG bin/tool",
    ]);
  });

  test("a bundled-libc runtime: libc inside, no GLIBC floor, kernel floor from the ABI tag", async (t) => {
    const py = await sharedPython();
    if (!py) return t.skip("no CPython with a shared libpython found");
    const out = path.join(tmpDir("audit-brt"), "rt");
    await createRuntime({ source: { python: py.path }, out, profile: "minimal", libc: "bundled" });
    const r = await audit(out, { policy: "glibc-2.17" });
    assert.equal(r.libc.mode, "bundled");
    assert.equal(r.floors.GLIBC, undefined);
    const tag = run("readelf", ["-n", path.join(out, "libexec", "libc.so.6")]).stdout.match(
      /OS: Linux, ABI: (\d+\.\d+\.\d+)/,
    )?.[1];
    assert.equal(r.libc.kernelFloor, tag);
    assert.deepEqual(
      r.findings.filter((f) => f.severity === "error"),
      [],
      "glibc-2.17 does not constrain a runtime that carries its libc",
    );
    assert.ok(
      r.runsOn.every((x) => x.from !== undefined),
      "runs on every listed distribution",
    );
  });
});

describe("distribution table", () => {
  test("agrees with this machine (and the bullseye test root when present)", async (t) => {
    const roots: { root: string; libdir: string }[] = [
      { root: "/", libdir: "/usr/lib/x86_64-linux-gnu" },
    ];
    const bullseye = path.join(
      process.env.PYPORT_TEST_ROOTS ?? "/var/cache/pyport-test-roots",
      "bullseye",
    );
    if (fs.existsSync(path.join(bullseye, ".pyport-root-complete")))
      roots.push({ root: bullseye, libdir: path.join(bullseye, "usr/lib/x86_64-linux-gnu") });
    let checked = 0;
    for (const { root, libdir } of roots) {
      const osr = fs.readFileSync(path.join(root, "etc/os-release"), "utf8");
      const id = /^ID=(.*)$/m.exec(osr)?.[1].replace(/"/g, "");
      const ver = /^VERSION_ID=(.*)$/m.exec(osr)?.[1].replace(/"/g, "");
      const family = distroTable().find((f) => f.family.toLowerCase() === id);
      const release = family?.releases.find((r) => r.version === ver);
      if (!release || !fs.existsSync(path.join(libdir, "libc.so.6"))) continue;
      const newest = (vs: string[]) =>
        vs
          .sort((a, b) =>
            a
              .split(".")
              .map(Number)
              .reduce((d, x, i) => d || x - Number(b.split(".")[i] ?? 0), 0),
          )
          .pop();
      const defs = async (file: string, ns: string) => {
        const { elf } = await readElfFile(file);
        return newest(
          elf.versionDefs
            .filter((d) => d.startsWith(`${ns}_`) && /^\d/.test(d.slice(ns.length + 1)))
            .map((d) => d.slice(ns.length + 1)),
        );
      };
      // glibc's own version string (a release may add no symbol-version node of its own).
      const libc = fs.readFileSync(path.join(libdir, "libc.so.6")).toString("latin1");
      assert.equal(
        release.glibc,
        /release version (\d+\.\d+)/.exec(libc)?.[1],
        `${id} ${ver} glibc`,
      );
      const stdcxx = path.join(libdir, "libstdc++.so.6");
      if (fs.existsSync(stdcxx)) {
        assert.equal(release.glibcxx, await defs(stdcxx, "GLIBCXX"), `${id} ${ver} GLIBCXX`);
        assert.equal(release.cxxabi, await defs(stdcxx, "CXXABI"), `${id} ${ver} CXXABI`);
      }
      checked++;
    }
    if (checked === 0)
      t.skip("this machine's distribution is not in data/distros.json: table not cross-checked");
  });
});

describe("licences, SBOM, archives and the CLI", () => {
  test("deny lists, unknown licences, CycloneDX SBOM, archive targets, usage errors", async () => {
    const app = path.join(tmpDir("audit-lic"), "app");
    const site = path.join(app, "lib", "python3.11", "site-packages");
    const dist = (name: string, headers: string) => {
      const d = path.join(site, `${name}-1.0.dist-info`);
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(
        path.join(d, "METADATA"),
        `Metadata-Version: 2.4\nName: ${name}\nVersion: 1.0\n${headers}\n\nlong description mentioning License: nothing\n`,
      );
      fs.writeFileSync(path.join(d, "RECORD"), `${name}/__init__.py,,\n`);
    };
    dist("gplthing", "License-Expression: GPL-3.0-only");
    dist("dual", "License-Expression: MIT OR GPL-3.0-or-later");
    dist("classic", "Classifier: License :: OSI Approved :: MIT License");
    dist("mystery", "Summary: no licence at all");

    const r = await audit(app, { deny: ["GPL-3.0"] });
    const byName = new Map(r.components.map((c) => [c.name, c]));
    assert.equal(byName.get("gplthing")!.copyleft, "strong");
    assert.equal(byName.get("dual")!.copyleft, false, "MIT OR GPL: the recipient may choose MIT");
    assert.equal(byName.get("classic")!.license, "MIT");
    assert.deepEqual(
      r.findings.filter((f) => f.code === "LICENSE_DENIED").map((f) => f.path),
      ["lib/python3.11/site-packages/gplthing-1.0.dist-info"],
    );
    assert.deepEqual(
      r.findings.filter((f) => f.code === "LICENSE_UNKNOWN").map((f) => f.path),
      ["lib/python3.11/site-packages/mystery-1.0.dist-info"],
    );
    assert.equal(copyleftOf(parseExpression("LGPL-2.1-or-later AND MIT")), "weak");
    assert.equal(
      isDenied(parseExpression("(GPL-2.0-only OR MIT) AND Apache-2.0"), ["GPL-2.0"]),
      false,
    );

    const sbom = path.join(path.dirname(app), "sbom.json");
    const cli = pyport(["audit", app, "--deny", "GPL-3.0", "--sbom", "cyclonedx", "--out", sbom]);
    assert.equal(cli.code, 1, "a denied licence fails the audit");
    assert.match(cli.stdout, /LICENSE_DENIED/);
    const bom = JSON.parse(fs.readFileSync(sbom, "utf8"));
    assert.equal(bom.bomFormat, "CycloneDX");
    assert.equal(bom.specVersion, "1.5");
    const gpl = bom.components.find((c: { name: string }) => c.name === "gplthing");
    assert.deepEqual(gpl.licenses, [{ license: { id: "GPL-3.0-only" } }]);
    assert.equal(
      gpl.hashes[0].content,
      createHash("sha256")
        .update(fs.readFileSync(path.join(site, "gplthing-1.0.dist-info", "RECORD")))
        .digest("hex"),
    );
    assert.equal(gpl.purl, "pkg:pypi/gplthing@1.0");
    assert.equal(
      pyport(["audit", app, "--fail-on", "warning"]).code,
      1,
      "the unknown licence is a warning",
    );
    assert.equal(pyport(["audit", app]).code, 0, "no errors without --deny");

    const tgz = path.join(path.dirname(app), "app.tar.gz");
    assert.equal(run("tar", ["-C", path.dirname(app), "-czf", tgz, "app"]).code, 0);
    const fromArchive = await audit(tgz, { deny: ["GPL-3.0"] });
    assert.deepEqual(
      fromArchive.components.map((c) => c.name),
      r.components.map((c) => c.name),
    );

    const evil = path.join(path.dirname(app), "evil.tar");
    const outside = path.join(path.dirname(app), "pwned");
    assert.equal(
      run("tar", [
        "-C",
        path.dirname(app),
        "-cf",
        evil,
        "--transform",
        "s,^app/lib,../pwned,",
        "app/lib",
      ]).code,
      0,
    );
    const bad = pyport(["audit", evil]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /\.\.|outside|escap/);
    assert.ok(!fs.existsSync(outside), "nothing was written outside the temp dir");

    const usage = pyport(["audit", app, "--policy", "manylinux_9_99"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown audit policy[\s\S]*manylinux_2_28/);
    assert.equal(pyport(["audit", app, "--out", sbom]).code, 2);
    assert.equal(pyport(["audit"]).code, 2);
  });
});
