/**
 * Debian's CPython is patched for a system install: its default install scheme is
 * `posix_local` (`<prefix>/local/lib/pythonX.Y/dist-packages`), `site` adds `site-packages` only
 * inside a venv, `ensurepip` refuses to run outside a venv and takes pip's wheel from
 * `/usr/share/python-wheels`, and its build-time variables say `/usr`. In a runtime, which is a
 * normal install wherever it lands, these are undone: the `posix_prefix` scheme and
 * `site-packages` (on sys.path through a .pth file: `site` is frozen), ensurepip allowed, the
 * wheels copied into `<runtime>/share/python-wheels` (where `WHEEL_PKG_DIR` then points), and
 * `prefix`-like variables under the runtime (fixups.ts rewrites them).
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";

/** Where Debian's python3-pip-whl puts the wheels its ensurepip installs. */
export const DEBIAN_WHEEL_DIR = "/usr/share/python-wheels";

/** Whether the stdlib at `stdlibDir` carries Debian's install-scheme patch. */
export function isDebianPatched(stdlibDir: string): boolean {
  const file = path.join(stdlibDir, "sysconfig.py");
  return fs.existsSync(file) && fs.readFileSync(file, "utf8").includes("'posix_local'");
}

async function patch(file: string, edits: [RegExp, string][]): Promise<void> {
  let text = await fsp.readFile(file, "utf8");
  for (const [from, to] of edits) text = text.replace(from, to);
  await fsp.writeFile(file, text);
}

/**
 * Undoes Debian's system-install patches in a staged runtime. `wheelDir` is the source's
 * `WHEEL_PKG_DIR`. Returns the wheel files copied (pip's among them: ensurepip can then run).
 */
export async function undoDebianLayout(
  root: string,
  stdlibDir: string,
  wheelDir: string | undefined,
): Promise<string[]> {
  await patch(path.join(stdlibDir, "sysconfig.py"), [
    [
      /prefix_scheme = 'posix_local'/g,
      "prefix_scheme = 'posix_prefix'  # pyport: a normal install",
    ],
  ]);
  // `site` is frozen into the interpreter (3.11+), so patching site.py would change nothing: a
  // .pth file in a directory Debian's site does add puts the runtime's site-packages on sys.path
  // as a site directory (its own .pth files processed). A venv without system site packages does
  // not read it; one with them gets the runtime's site-packages, as upstream.
  const distPackages = path.join(stdlibDir, "dist-packages");
  await fsp.mkdir(distPackages, { recursive: true });
  await fsp.writeFile(
    path.join(distPackages, "pyport-site-packages.pth"),
    "import os, site, sys; site.addsitedir(os.path.join(sys.base_prefix, 'lib', 'python%d.%d' % sys.version_info[:2], 'site-packages'))\n",
  );
  const ensurepip = path.join(stdlibDir, "ensurepip", "__init__.py");
  if (fs.existsSync(ensurepip))
    await patch(ensurepip, [
      [
        /def _ensurepip_is_disabled_in_debian_for_system\(\):\n/,
        "def _ensurepip_is_disabled_in_debian_for_system():\n    return  # pyport: a runtime is not the system python\n",
      ],
    ]);
  const copied: string[] = [];
  if (wheelDir && fs.existsSync(wheelDir)) {
    const dest = path.join(root, "share", "python-wheels");
    await fsp.mkdir(dest, { recursive: true });
    for (const name of await fsp.readdir(wheelDir)) {
      if (!name.endsWith(".whl")) continue;
      await fsp.copyFile(path.join(wheelDir, name), path.join(dest, name));
      copied.push(name);
    }
  }
  return copied;
}
