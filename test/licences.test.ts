/**
 * Copyleft-free by default: a runtime made with the default profile from an interpreter whose
 * readline module links GNU readline leaves the module out (and says so), so nothing it ships is
 * GPL — libuuid's licence is read from the `Files: libuuid/*` paragraph of util-linux's
 * copyright file, not its `Files: *` — while `--profile full` keeps readline and reports it.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { readElfFile } from "../src/elf/file.js";
import { pyport, run, sharedPython, skipPart, tmpDir, useTestCache } from "./helpers.js";

useTestCache();

interface AuditJson {
  components: { name: string; license: string; licenseSource: string }[];
}

describe("licences of a default runtime", { timeout: 600_000 }, () => {
  let python: string | undefined;
  let why: string | undefined;
  before(async () => {
    const p = await sharedPython();
    if (!p) {
      why = "no CPython with a shared libpython found";
      return;
    }
    python = p.path;
    const dynload = path.join(
      p.probe.prefix,
      "lib",
      `python${p.probe.major}.${p.probe.minor}`,
      "lib-dynload",
    );
    const module = run("sh", ["-c", `ls ${dynload}/readline*.so`])
      .stdout.trim()
      .split("\n")[0];
    const links =
      module && (await readElfFile(module)).elf.needed.some((n) => n.startsWith("libreadline"));
    if (!links) why = `${python}'s readline module does not link GNU readline`;
  });

  test("the default profile ships no GPL component; --deny GPL-2.0 and GPL-3.0 pass", async (t) => {
    if (why) return skipPart(t, why);
    const out = path.join(tmpDir("lic-default"), "rt");
    const created = pyport(["runtime", "create", "--python", python!, "--out", out]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(
      created.stderr,
      /left out the readline module: it links GNU readline \(GPL-3\.0-or-later\)/,
    );
    const imp = run(path.join(out, "bin/python3"), ["-c", "import readline"]);
    assert.notEqual(imp.code, 0, "readline is not shipped");
    const doctor = pyport(["runtime", "doctor", out]);
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /readline\s+OK\s+left out by the profile/);
    const audit = pyport(["audit", out, "--json"]);
    const report = JSON.parse(audit.stdout) as AuditJson;
    const gpl = report.components.filter((c) => /GPL/.test(c.license) && !/LGPL/.test(c.license));
    assert.deepEqual(gpl, [], "no GPL component");
    const uuid = report.components.find((c) => c.name.startsWith("libuuid"));
    if (uuid) {
      assert.equal(uuid.license, "BSD-3-Clause");
      assert.match(uuid.licenseSource, /\(Files: libuuid\/\* /);
    }
    for (const deny of ["GPL-2.0", "GPL-3.0"])
      assert.equal(pyport(["audit", out, "--deny", deny]).code, 0, `--deny ${deny}`);
  });

  test("--profile full keeps readline, and the audit names its licence", async (t) => {
    if (why) return skipPart(t, why);
    const out = path.join(tmpDir("lic-full"), "rt");
    const created = pyport([
      "runtime",
      "create",
      "--python",
      python!,
      "--profile",
      "full",
      "--out",
      out,
    ]);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(run(path.join(out, "bin/python3"), ["-c", "import readline"]).code, 0);
    const report = JSON.parse(pyport(["audit", out, "--json"]).stdout) as AuditJson;
    assert.ok(
      report.components.some((c) => c.name.startsWith("libreadline") && /GPL-3\.0/.test(c.license)),
      JSON.stringify(report.components.map((c) => [c.name, c.license])),
    );
    assert.equal(pyport(["audit", out, "--deny", "GPL-3.0"]).code, 1);
  });
});
