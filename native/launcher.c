/*
 * pyport launcher: a small static executable that starts a program found relative to its own
 * real location, described by a spec appended to the launcher file itself.
 *
 * File layout:  <this ELF> <spec bytes> <u32 little-endian spec length> <8 bytes "PYPLNCH1">
 * Spec: lines "key value" (value runs to the end of the line):
 *   exec PATH      program to run, relative to the launcher's directory (required)
 *   loader PATH    run `exec` through this ELF loader (bundled libc), relative as above
 *   libpath PATH   the loader's --library-path, relative as above
 *   argv0 self|PATH  argv[0] given to the program: the launcher's path as invoked, or a path
 *                  relative to the launcher's directory
 *   arg VALUE      a fixed argument placed before the user's; "{self}" stands for the launcher
 *                  path as invoked (made absolute), "{dir}" for the launcher's real directory
 *
 * Contract: never changes the environment (no LD_LIBRARY_PATH), forks nothing, and replaces
 * itself with the program (exit code, signals and stdio are the program's). It needs nothing on
 * the target: no /bin/sh, no libc (it is static); /proc is used when mounted, else argv[0] and
 * PATH are resolved by hand. Errors go to stderr with exit status 127.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "PYPLNCH1"
#define MAX_SPEC 65536
#define MAX_ARGS 256

static const char *self_name = "pyport-launcher";

static void die(const char *what, const char *detail) {
  fprintf(stderr, "%s: %s%s%s\n", self_name, what, detail ? ": " : "", detail ? detail : "");
  exit(127);
}

/* The launcher's real path: /proc/self/exe when mounted, else argv[0] (searched on PATH when it
 * has no slash) with symlinks resolved. */
static void find_self(const char *argv0, char *out) {
  ssize_t n = readlink("/proc/self/exe", out, PATH_MAX - 1);
  if (n > 0) {
    out[n] = 0;
    return;
  }
  char candidate[PATH_MAX];
  if (strchr(argv0, '/')) {
    if (realpath(argv0, out)) return;
    die("cannot resolve own path", argv0);
  }
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    const char *end = strchrnul(path, ':');
    int len = (int)(end - path);
    snprintf(candidate, sizeof candidate, "%.*s/%s", len ? len : 1, len ? path : ".", argv0);
    if (access(candidate, X_OK) == 0 && realpath(candidate, out)) return;
    path = *end ? end + 1 : end;
  }
  die("cannot find own path (mount /proc, or run me by path)", argv0);
}

static char *read_spec(const char *self) {
  int fd = open(self, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("cannot open own file", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < 12) die("launcher file is truncated", self);
  unsigned char tail[12];
  if (pread(fd, tail, 12, st.st_size - 12) != 12 || memcmp(tail + 4, MAGIC, 8) != 0)
    die("no launch spec appended (is this file damaged?)", self);
  uint32_t len = tail[0] | tail[1] << 8 | tail[2] << 16 | (uint32_t)tail[3] << 24;
  if (len == 0 || len > MAX_SPEC || (off_t)len > st.st_size - 12) die("launch spec has a bad length", self);
  char *spec = malloc(len + 1);
  if (!spec || pread(fd, spec, len, st.st_size - 12 - len) != (ssize_t)len) die("cannot read launch spec", self);
  spec[len] = 0;
  close(fd);
  return spec;
}

static char *join(const char *dir, const char *rel) {
  char *p;
  if (rel[0] == '/') return strdup(rel);
  if (asprintf(&p, "%s/%s", dir, rel) < 0) die("out of memory", NULL);
  return p;
}

/* The invoked path made absolute (kept unresolved so symlinks stay visible to the program). */
static char *invoked_path(const char *argv0, const char *self) {
  if (!strchr(argv0, '/')) return strdup(self);
  if (argv0[0] == '/') return strdup(argv0);
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return strdup(self);
  return join(cwd, argv0);
}

static char *expand(const char *value, const char *invoked, const char *dir) {
  if (strcmp(value, "{self}") == 0) return strdup(invoked);
  if (strcmp(value, "{dir}") == 0) return strdup(dir);
  return strdup(value);
}

int main(int argc, char **argv) {
  const char *argv0 = argc > 0 ? argv[0] : "";
  const char *base = strrchr(argv0, '/');
  self_name = base ? base + 1 : argv0;
  char self[PATH_MAX];
  find_self(argv0, self);
  char dir[PATH_MAX];
  strcpy(dir, self);
  *strrchr(dir, '/') = 0;
  char *invoked = invoked_path(argv0, self);

  char *exec_path = NULL, *loader = NULL, *libpath = NULL, *child_argv0 = NULL;
  char *fixed[MAX_ARGS];
  int nfixed = 0;
  char *spec = read_spec(self);
  for (char *line = strtok(spec, "\n"); line; line = strtok(NULL, "\n")) {
    char *sp = strchr(line, ' ');
    if (!sp) die("bad launch spec line", line);
    *sp = 0;
    const char *key = line, *value = sp + 1;
    if (strcmp(key, "exec") == 0) exec_path = join(dir, value);
    else if (strcmp(key, "loader") == 0) loader = join(dir, value);
    else if (strcmp(key, "libpath") == 0) libpath = join(dir, value);
    else if (strcmp(key, "argv0") == 0) child_argv0 = strcmp(value, "self") == 0 ? invoked : join(dir, value);
    else if (strcmp(key, "arg") == 0) {
      if (nfixed == MAX_ARGS) die("too many fixed arguments in launch spec", NULL);
      fixed[nfixed++] = expand(value, invoked, dir);
    } else die("unknown key in launch spec", key);
  }
  if (!exec_path) die("launch spec has no exec line", self);
  if (!child_argv0) child_argv0 = exec_path;

  char **out = calloc((size_t)argc + nfixed + 8, sizeof *out);
  if (!out) die("out of memory", NULL);
  int n = 0;
  const char *program;
  if (loader) {
    program = loader;
    out[n++] = loader;
    if (libpath) {
      out[n++] = "--library-path";
      out[n++] = libpath;
    }
    out[n++] = "--argv0";
    out[n++] = child_argv0;
    out[n++] = exec_path;
  } else {
    program = exec_path;
    out[n++] = child_argv0;
  }
  for (int i = 0; i < nfixed; i++) out[n++] = fixed[i];
  for (int i = 1; i < argc; i++) out[n++] = argv[i];
  out[n] = NULL;
  execv(program, out);
  fprintf(stderr, "%s: cannot execute %s: %s\n", self_name, program, strerror(errno));
  exit(127);
  return 127;
}
