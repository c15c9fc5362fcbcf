/*
 * pyport launcher: a small static executable that starts a program found relative to its own
 * real location, described by a spec appended to the launcher file itself (format: launch.h).
 *
 * Contract: never changes the environment (no LD_LIBRARY_PATH), forks nothing, and replaces
 * itself with the program (exit code, signals and stdio are the program's). It needs nothing on
 * the target: no /bin/sh, no libc (it is static); /proc is used when mounted, else argv[0] and
 * PATH are resolved by hand. Errors go to stderr with exit status 127.
 */
#include "launch.h"

/*
 * A copy of a runtime's launcher in a venv made with copies (`python -m venv --copies`,
 * `venv.create()`): its spec's paths are relative to the runtime's bin/, which the venv's
 * pyvenv.cfg names as `home`. When the spec's program is not found beside the launcher and
 * ../pyvenv.cfg has a home, `dir` becomes that home.
 */
static void venv_home(char *dir, const char *spec) {
  const char *e = strncmp(spec, "exec ", 5) == 0 ? spec : strstr(spec, "\nexec ");
  if (!e) return;
  e += e == spec ? 5 : 6;
  char probe[PATH_MAX];
  if (snprintf(probe, sizeof probe, "%s/%.*s", dir, (int)strcspn(e, "\n"), e) >= (int)sizeof probe) return;
  if (access(probe, F_OK) == 0) return;
  char cfg[PATH_MAX];
  if (snprintf(cfg, sizeof cfg, "%s/../pyvenv.cfg", dir) >= (int)sizeof cfg) return;
  FILE *f = fopen(cfg, "r");
  if (!f) return;
  char line[PATH_MAX + 64];
  while (fgets(line, sizeof line, f)) {
    char *p = line + strspn(line, " \t");
    if (strncmp(p, "home", 4) != 0) continue;
    p += 4 + strspn(p + 4, " \t");
    if (*p != '=') continue;
    p += 1 + strspn(p + 1, " \t");
    size_t n = strcspn(p, "\r\n");
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    if (n && n < PATH_MAX) {
      memcpy(dir, p, n);
      dir[n] = 0;
    }
    break;
  }
  fclose(f);
}

int main(int argc, char **argv) {
  char self[PATH_MAX];
  const char *argv0 = identify(argc, argv, self);
  char dir[PATH_MAX];
  strcpy(dir, self);
  *strrchr(dir, '/') = 0;
  char *spec = read_spec(self);
  if (!spec) die("no launch spec appended (is this file damaged?)", self);
  venv_home(dir, spec);
  launch(spec, dir, invoked_path(argv0, self), argc, argv);
  return 127;
}
