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

/* Whether the spec's program exists relative to `dir`. */
static int program_in(const char *dir, const char *spec) {
  const char *e = strncmp(spec, "exec ", 5) == 0 ? spec : strstr(spec, "\nexec ");
  if (!e) return 1; /* launch() reports the missing line */
  e += e == spec ? 5 : 6;
  char probe[PATH_MAX];
  if (snprintf(probe, sizeof probe, "%s/%.*s", dir, (int)strcspn(e, "\n"), e) >= (int)sizeof probe) return 0;
  return access(probe, F_OK) == 0;
}

/*
 * A copy of a runtime's launcher in a venv made with copies (`python -m venv --copies`,
 * `venv.create()`): its spec's paths are relative to the runtime's bin/, which the venv's
 * pyvenv.cfg names as `home`. When ../pyvenv.cfg has a home, `dir` becomes that home.
 */
static void venv_home(char *dir) {
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

/*
 * A launcher copied out of its runtime alone finds the runtime the way a copied interpreter
 * with a shared libpython finds its library: through LD_LIBRARY_PATH. The first entry E whose
 * E/../bin holds the spec's program becomes `dir` (resolved).
 */
static void library_path_home(char *dir, const char *spec) {
  const char *paths = getenv("LD_LIBRARY_PATH");
  while (paths && *paths) {
    const char *end = strchrnul(paths, ':');
    char candidate[PATH_MAX];
    int len = (int)(end - paths);
    if (len && snprintf(candidate, sizeof candidate, "%.*s/../bin", len, paths) < (int)sizeof candidate &&
        program_in(candidate, spec)) {
      if (!realpath(candidate, dir)) strcpy(dir, candidate);
      return;
    }
    paths = *end ? end + 1 : end;
  }
}

int main(int argc, char **argv) {
  char self[PATH_MAX];
  const char *argv0 = identify(argc, argv, self);
  char dir[PATH_MAX];
  strcpy(dir, self);
  *strrchr(dir, '/') = 0;
  char *spec = read_spec(self);
  if (!spec) die("no launch spec appended (is this file damaged?)", self);
  if (!program_in(dir, spec)) venv_home(dir);
  if (!program_in(dir, spec)) library_path_home(dir, spec);
  launch(spec, dir, invoked_path(argv0, self), argc, argv);
  return 127;
}
