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

int main(int argc, char **argv) {
  char self[PATH_MAX];
  const char *argv0 = identify(argc, argv, self);
  char dir[PATH_MAX];
  strcpy(dir, self);
  *strrchr(dir, '/') = 0;
  char *spec = read_spec(self);
  if (!spec) die("no launch spec appended (is this file damaged?)", self);
  launch(spec, dir, invoked_path(argv0, self), argc, argv);
  return 127;
}
