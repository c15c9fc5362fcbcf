/**
 * Launchers, native and sh: they find their program relative to their real location (moved,
 * through symlinks, by relative path, via PATH), pass arguments, stdio and exit codes through,
 * expand {self}/{dir}, and reject a damaged file with a clear message.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import {
  encodeSpec,
  nativeLauncherPath,
  readSpec,
  writeLauncher,
  type LaunchSpec,
} from "../src/runtime/launcher.js";
import { run, tmpDir } from "./helpers.js";

const saved = process.env.PYPORT_LAUNCHER;
after(() => {
  if (saved === undefined) delete process.env.PYPORT_LAUNCHER;
  else process.env.PYPORT_LAUNCHER = saved;
});

/** A tree `app/bin/<launcher>` + `app/libexec/show` (an sh script printing its argv). */
async function makeApp(kind: "native" | "sh", spec: Partial<LaunchSpec> = {}): Promise<string> {
  process.env.PYPORT_LAUNCHER = kind;
  const app = path.join(tmpDir(`launch-${kind}`), "my app");
  fs.mkdirSync(path.join(app, "bin"), { recursive: true });
  fs.mkdirSync(path.join(app, "libexec"));
  fs.writeFileSync(
    path.join(app, "libexec", "show"),
    '#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\nread line && echo "stdin:$line"\nexit 7\n',
    { mode: 0o755 },
  );
  const written = await writeLauncher(path.join(app, "bin", "tool"), {
    exec: "../libexec/show",
    ...spec,
  });
  assert.equal(written, kind);
  return app;
}

for (const kind of ["native", "sh"] as const) {
  describe(`${kind} launcher`, () => {
    test("runs its program from a moved tree, by relative path and through a symlink", async (t) => {
      if (kind === "native" && !nativeLauncherPath())
        return t.skip("no native launcher was built (no C compiler): native launcher not tested");
      const app = await makeApp(kind, { args: ["fixed arg", "{self}", "{dir}"] });
      const moved = path.join(path.dirname(app), "moved here");
      fs.renameSync(app, moved);
      const direct = run(path.join(moved, "bin", "tool"), ["user arg", "x y"], {
        input: "hello\n",
      });
      assert.equal(direct.code, 7, direct.stderr);
      assert.equal(
        direct.stdout,
        `[fixed arg]\n[${moved}/bin/tool]\n[${fs.realpathSync(moved)}/bin]\n[user arg]\n[x y]\nstdin:hello\n`,
      );

      const linkDir = tmpDir("launch-link");
      fs.symlinkSync(path.join(moved, "bin", "tool"), path.join(linkDir, "mytool"));
      const viaLink = run(path.join(linkDir, "mytool"), ["z"], { input: "" });
      assert.match(
        viaLink.stdout,
        new RegExp(`^\\[fixed arg\\]\\n\\[${linkDir}/mytool\\]\\n`),
        "{self} is the path as invoked",
      );
      const viaPath = run("sh", ["-c", "mytool z </dev/null"], {
        env: { ...process.env, PATH: `${linkDir}:${process.env.PATH}` },
      });
      assert.equal(viaPath.code, 7, viaPath.stderr);
      const relative = run("sh", ["-c", "./tool q </dev/null"], { cwd: path.join(moved, "bin") });
      assert.equal(relative.code, 7, relative.stderr);
      assert.match(relative.stdout, /\[q\]/);
    });
  });
}

describe("native launcher spec", () => {
  test("round-trips, and a damaged launcher fails with a clear message", async (t) => {
    if (!nativeLauncherPath())
      return t.skip("no native launcher was built (no C compiler): native launcher not tested");
    const spec: LaunchSpec = {
      exec: "../libexec/python3.12",
      loader: "../libexec/ld.so",
      libpath: "../libexec",
      argv0: "self",
      args: ["-I", "{self}"],
    };
    const app = await makeApp("native");
    const file = path.join(app, "bin", "tool");
    fs.writeFileSync(
      file,
      Buffer.concat([fs.readFileSync(nativeLauncherPath()!), encodeSpec(spec)]),
    );
    assert.deepEqual(readSpec(file), spec);
    assert.throws(() => encodeSpec({ exec: "x", args: ["a\nb"] }), /newline/);
    fs.truncateSync(file, fs.statSync(file).size - 3);
    const r = run(file, []);
    assert.equal(r.code, 127);
    assert.match(r.stderr, /tool: no launch spec appended/);
  });
});
