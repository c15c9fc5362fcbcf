/*
 * Shared by the native launcher (launcher.c) and the onefile stub (onefile.c): finding one's own
 * file, reading a launch spec appended to a file, and replacing the process with the program a
 * spec describes.
 *
 * A spec is appended to a file as:  <spec bytes> <u32 little-endian spec length> <"PYPLNCH1">
 * Spec: lines "key value" (value runs to the end of the line):
 *   exec PATH      program to run, relative to the spec's directory (required)
 *   loader PATH    run `exec` through this ELF loader (bundled libc), relative as above
 *   libpath PATH   the loader's --library-path, relative as above
 *   argv0 self|PATH  argv[0] given to the program: the invoked path, or a path relative to the
 *                  spec's directory
 *   arg VALUE      a fixed argument placed before the user's; "{self}" stands for the invoked
 *                  path (made absolute), "{dir}" for the spec's directory
 */
#ifndef PYPORT_LAUNCH_H
#define PYPORT_LAUNCH_H
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

#define SPEC_MAGIC "PYPLNCH1"
#define MAX_SPEC 65536
#define MAX_ARGS 256

static const char *self_name = "pyport";
static int die_status = 127;
/* Run by die() before exiting, e.g. to remove a half-written directory. */
static void (*before_die)(void) = NULL;

static void die(const char *what, const char *detail) {
  fprintf(stderr, "%s: %s%s%s\n", self_name, what, detail ? ": " : "", detail ? detail : "");
  if (before_die) before_die();
  exit(die_status);
}

/* Our real path: /proc/self/exe when mounted, else argv[0] (searched on PATH when it has no
 * slash) with symlinks resolved. */
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

/* Names error messages after argv[0], finds our own file (into `self`, PATH_MAX bytes) and
 * returns argv[0]. */
static const char *identify(int argc, char **argv, char *self) {
  const char *argv0 = argc > 0 ? argv[0] : "";
  const char *base = strrchr(argv0, '/');
  self_name = base ? base + 1 : argv0;
  find_self(argv0, self);
  return argv0;
}

static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* The spec appended to `file`, NUL-terminated; NULL when the file carries none. */
static char *read_spec(const char *file) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("cannot open launcher", file);
  struct stat st;
  unsigned char tail[12];
  if (fstat(fd, &st) != 0 || st.st_size < 12 || pread(fd, tail, 12, st.st_size - 12) != 12 || memcmp(tail + 4, SPEC_MAGIC, 8) != 0) {
    close(fd);
    return NULL;
  }
  uint32_t len = le32(tail);
  if (len == 0 || len > MAX_SPEC || (off_t)len > st.st_size - 12) die("launch spec has a bad length", file);
  char *spec = malloc(len + 1);
  if (!spec || pread(fd, spec, len, st.st_size - 12 - len) != (ssize_t)len) die("cannot read launch spec", file);
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

/* Called with errno set when execv failed; may explain and exit (the onefile stub does). */
static void (*on_exec_failure)(const char *program) = NULL;

/* Replaces the process with the program `spec` describes (paths relative to `dir`), passing
 * argv[1..] after the spec's fixed arguments. Never returns. */
static void launch(char *spec, const char *dir, const char *invoked, int argc, char **argv) {
  char *exec_path = NULL, *loader = NULL, *libpath = NULL, *child_argv0 = NULL;
  char *fixed[MAX_ARGS];
  int nfixed = 0;
  for (char *line = strtok(spec, "\n"); line; line = strtok(NULL, "\n")) {
    char *sp = strchr(line, ' ');
    if (!sp) die("bad launch spec line", line);
    *sp = 0;
    const char *key = line, *value = sp + 1;
    if (strcmp(key, "exec") == 0) exec_path = join(dir, value);
    else if (strcmp(key, "loader") == 0) loader = join(dir, value);
    else if (strcmp(key, "libpath") == 0) libpath = join(dir, value);
    else if (strcmp(key, "argv0") == 0) child_argv0 = strcmp(value, "self") == 0 ? (char *)invoked : join(dir, value);
    else if (strcmp(key, "arg") == 0) {
      if (nfixed == MAX_ARGS) die("too many fixed arguments in launch spec", NULL);
      fixed[nfixed++] = expand(value, invoked, dir);
    } else die("unknown key in launch spec", key);
  }
  if (!exec_path) die("launch spec has no exec line", dir);
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
  if (on_exec_failure) on_exec_failure(program);
  fprintf(stderr, "%s: cannot execute %s: %s\n", self_name, program, strerror(errno));
  exit(127);
}

#endif
