/**
 * The bundled-libc launcher: a POSIX sh script in `bin/` that starts the real interpreter
 * (`libexec/`) through the bundled loader, so neither the host's loader nor its libc is used.
 * `--library-path` is an argument of ld.so, not LD_LIBRARY_PATH: child processes that are not
 * this Python never see it. `--argv0 "$0"` keeps sys.executable pointing at the launcher, so
 * subprocess, multiprocessing (spawn) and venv start Python the same way again.
 * The fast path forks nothing: symlinks are resolved only when `$0` is one.
 */
export function bundledLauncher(opts: { loader: string; interpreter: string }): string {
  return `#!/bin/sh
# pyport launcher (bundled libc): runs ../libexec/${opts.interpreter} with the bundled loader.
p=$0
while [ -h "$p" ]; do
  l=$(readlink "$p")
  case $l in /*) p=$l ;; *) p=\${p%/*}/$l ;; esac
done
case $p in */*) d=\${p%/*} ;; *) d=. ;; esac
x=$d/../libexec
exec "$x/${opts.loader}" --library-path "$x" --argv0 "$0" "$x/${opts.interpreter}" "$@"
`;
}
