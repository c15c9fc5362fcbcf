/*
 * pyport onefile stub: the head of a single-file executable built by `pyport build --format
 * onefile`. Format (docs/onefile-format.md):
 *
 *   <this static ELF> <payload: zstd-compressed tar of the bundle> <metadata> <64-byte trailer>
 *
 * First run: verify the sha256 of payload+metadata, extract into
 * <cache>/onefile-v1/<name>-<sha256> under an flock (into a temp dir, rename, completion marker
 * written last), then exec the entry launcher's program. Warm run: stat the marker, exec.
 * The app sees sys.argv[0] and $PYPORT_ONEFILE = this file's path as invoked.
 *
 * Needs nothing on the target (static; no sh, tar or gzip; /proc optional) but a writable
 * directory on a filesystem that allows exec. Management without touching the app's arguments:
 * PYPORT_ONEFILE_COMMAND=info|verify|extract DIR|clean.
 */
#include "launch.h"
#include "sha256.h"

#include <dirent.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <time.h>
#include <zstd.h>

#define TRAILER_SIZE 64
#define TRAILER_MAGIC "PYONEF"
#define FORMAT_VERSION "01"
#define BUCKET "onefile-v1"
#define MARKER ".pyport-complete"
#define MAX_META 65536

struct onefile {
  int fd;
  off_t size;
  uint64_t payload_offset, payload_size;
  uint32_t meta_size;
  unsigned char sha[32];
  char hex[65];
  char *name, *version, *entry;
  uint64_t unpacked;
};

static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p + 4) << 32 | le32(p); }

static int safe_component(const char *s) {
  if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return 0;
  for (; *s; s++)
    if (!(*s == '.' || *s == '_' || *s == '-' || *s == '+' || (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return 0;
  return 1;
}

/* Reads and checks the trailer and metadata (cheap: two small preads). */
static void open_onefile(const char *self, struct onefile *of) {
  memset(of, 0, sizeof *of);
  of->fd = open(self, O_RDONLY | O_CLOEXEC);
  if (of->fd < 0) die("cannot read own file (a onefile must be readable, not only executable)", strerror(errno));
  struct stat st;
  if (fstat(of->fd, &st) != 0) die("cannot stat own file", strerror(errno));
  of->size = st.st_size;
  unsigned char t[TRAILER_SIZE];
  if (of->size < TRAILER_SIZE || pread(of->fd, t, TRAILER_SIZE, of->size - TRAILER_SIZE) != TRAILER_SIZE || memcmp(t + 56, TRAILER_MAGIC, 6) != 0)
    die("this file has no onefile trailer: it is truncated or damaged; download or build it again", self);
  if (memcmp(t + 62, FORMAT_VERSION, 2) != 0) die("this onefile uses a newer format than this stub understands", self);
  of->payload_offset = le64(t);
  of->payload_size = le64(t + 8);
  of->meta_size = le32(t + 16);
  if (le32(t + 20) != 1) die("unknown payload compression in trailer", self);
  memcpy(of->sha, t + 24, 32);
  for (int i = 0; i < 32; i++) sprintf(of->hex + 2 * i, "%02x", of->sha[i]);
  if (of->meta_size == 0 || of->meta_size > MAX_META || of->payload_offset + of->payload_size + of->meta_size + TRAILER_SIZE != (uint64_t)of->size)
    die("the sizes in the trailer do not match the file: it is truncated or has data appended; download or build it again", self);
  char *meta = malloc(of->meta_size + 1);
  if (!meta || pread(of->fd, meta, of->meta_size, (off_t)(of->payload_offset + of->payload_size)) != (ssize_t)of->meta_size) die("cannot read metadata", self);
  meta[of->meta_size] = 0;
  for (char *line = strtok(meta, "\n"); line; line = strtok(NULL, "\n")) {
    char *sp = strchr(line, ' ');
    if (!sp) continue;
    *sp = 0;
    if (strcmp(line, "name") == 0) of->name = sp + 1;
    else if (strcmp(line, "version") == 0) of->version = sp + 1;
    else if (strcmp(line, "entry") == 0) of->entry = sp + 1;
    else if (strcmp(line, "unpacked-bytes") == 0) of->unpacked = strtoull(sp + 1, NULL, 10);
  }
  if (!of->name || !safe_component(of->name) || !of->entry || of->entry[0] == '/' || strstr(of->entry, "..")) die("metadata lacks a valid name or entry", self);
  if (!of->version) of->version = "?";
}

/* sha256 over payload+metadata equals the trailer's; returns 1 when it does. */
static int verify(struct onefile *of, char got_hex[65]) {
  size_t len = (size_t)(of->payload_size + of->meta_size);
  long page = sysconf(_SC_PAGESIZE);
  off_t start = (off_t)(of->payload_offset / page * page);
  size_t skip = (size_t)(of->payload_offset - start);
  unsigned char *map = mmap(NULL, len + skip, PROT_READ, MAP_PRIVATE, of->fd, start);
  if (map == MAP_FAILED) die("cannot map own file", strerror(errno));
  madvise(map, len + skip, MADV_SEQUENTIAL);
  sha256_ctx c;
  sha256_init(&c);
  sha256_update(&c, map + skip, len);
  unsigned char got[32];
  sha256_final(&c, got);
  munmap(map, len + skip);
  for (int i = 0; i < 32; i++) sprintf(got_hex + 2 * i, "%02x", got[i]);
  return memcmp(got, of->sha, 32) == 0;
}

static void verify_or_die(struct onefile *of, const char *self) {
  char got[65];
  if (verify(of, got)) return;
  fprintf(stderr, "%s: %s is corrupted: payload sha256 is %s, the trailer says %s.\n%s: nothing was extracted; download or build the file again.\n", self_name, self, got, of->hex, self_name);
  if (before_die) before_die();
  exit(die_status);
}

/* ---- tar extraction ----
 * pyport's strict tar profile, read exactly as src/archive/tar-read.ts reads it with `strict`
 * (what `pyport audit` of a onefile uses), so the two never see different trees; whatever they
 * could read differently, both refuse:
 * - every header is ustar ("ustar\0" "00") with an empty prefix field and a valid checksum;
 *   numeric fields are octal digits, then NULs or spaces only;
 * - types: file ('0' or NUL), directory ('5'), symlink ('2'), and a pax header ('x') with only
 *   `path` and `linkpath` records, followed by the entry it describes;
 * - names and link targets are valid UTF-8 without NUL; only files carry data;
 * - the archive ends with a zero block, and only zeros follow it.
 * Names are relative with no empty, "." or ".." component; a directory's parent must be
 * extracted before it; symlinks point inside by their leading ".." only, and nothing is stored
 * below one. */

struct link {
  char *name, *target;
};

struct tar {
  int root;                  /* directory fd extraction happens beneath */
  unsigned char hdr[512];
  size_t hdr_fill;
  uint64_t left, pad;         /* bytes left in the current entry's data, then padding */
  int out;                    /* fd of the file being written, or -1 */
  int in_pax;                 /* current data is a pax header */
  int pax_pending;            /* a pax header was read; its entry comes next */
  char *pax, *pax_path, *pax_link;
  size_t pax_fill;
  int done;
  struct link *links;
  size_t nlinks, cap;
  uint64_t written;
  const char *where;
};

static void bad_payload(struct tar *t, const char *what, const char *name) {
  char msg[PATH_MAX + 128];
  snprintf(msg, sizeof msg, "%s%s%s", what, name ? ": " : "", name ? name : "");
  die("bad payload (refusing to extract)", msg);
  (void)t;
}

/* Entry names: relative, no "." or ".." components, no empty components. */
static void check_name(struct tar *t, const char *name) {
  if (!*name || name[0] == '/') bad_payload(t, "absolute or empty path", name);
  const char *p = name;
  while (*p) {
    const char *e = strchrnul(p, '/');
    size_t n = (size_t)(e - p);
    if (n == 0 && *e) bad_payload(t, "empty path component", name);
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) bad_payload(t, "'.' or '..' in path", name);
    p = *e ? e + 1 : e;
  }
}

/* A symlink's target: relative, its ".." components only at the start and no more of them than
 * the link's depth. With no entry stored below a symlink (check_not_below_link), a link can then
 * only resolve inside the bundle. */
static void check_link_target(struct tar *t, const char *name, const char *target) {
  if (!*target || target[0] == '/') bad_payload(t, "symlink to an absolute or empty path", name);
  int depth = 0, leading = 1;
  for (const char *p = name; *p; p++)
    if (*p == '/') depth++;
  for (const char *p = target; *p;) {
    const char *e = strchrnul(p, '/');
    size_t n = (size_t)(e - p);
    if (n == 2 && p[0] == '.' && p[1] == '.') {
      if (!leading || --depth < 0) bad_payload(t, "symlink pointing outside the bundle (or with '..' after a name)", name);
    } else if (n && !(n == 1 && p[0] == '.')) leading = 0;
    p = *e ? e + 1 : e;
  }
}

static void check_not_below_link(struct tar *t, const char *name) {
  for (size_t i = 0; i < t->nlinks; i++) {
    size_t n = strlen(t->links[i].name);
    if (strncmp(name, t->links[i].name, n) == 0 && name[n] == '/') bad_payload(t, "entry stored below a symlink", name);
  }
}

/* Octal digits, then only NULs or spaces; an empty field is 0. */
static uint64_t octal(struct tar *t, const unsigned char *p, size_t n, const char *what) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) v = v * 8 + (uint64_t)(p[i] - '0');
  for (; i < n; i++)
    if (p[i] != 0 && p[i] != ' ') bad_payload(t, "bad numeric field", what);
  return v;
}

/* Valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF), as a fatal TextDecoder. */
static int utf8_ok(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || i + len > n) return 0;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += len;
  }
  return 1;
}

static void parse_pax(struct tar *t) {
  char *p = t->pax, *end = t->pax + t->pax_fill;
  while (p < end) {
    char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p || *p == '0') bad_payload(t, "bad pax record length", NULL);
    size_t len = 0;
    for (char *d = p; d < sp; d++) {
      if (*d < '0' || *d > '9' || len > MAX_META) bad_payload(t, "bad pax record length", NULL);
      len = len * 10 + (size_t)(*d - '0');
    }
    if (len > (size_t)(end - p) || p[len - 1] != '\n' || sp + 1 > p + len - 1) bad_payload(t, "bad pax record", NULL);
    char *kv = sp + 1, *eq = memchr(kv, '=', (size_t)(p + len - 1 - kv));
    size_t klen = eq ? (size_t)(eq - kv) : 0;
    char **slot = klen == 4 && memcmp(kv, "path", 4) == 0 ? &t->pax_path : klen == 8 && memcmp(kv, "linkpath", 8) == 0 ? &t->pax_link : NULL;
    if (!slot) bad_payload(t, "pax record other than path or linkpath", NULL);
    if (*slot) bad_payload(t, "pax record given twice", NULL);
    size_t vlen = (size_t)(p + len - 1 - (eq + 1));
    if (memchr(eq + 1, 0, vlen) || !utf8_ok((unsigned char *)eq + 1, vlen)) bad_payload(t, "pax value with NUL or invalid UTF-8", NULL);
    *slot = strndup(eq + 1, vlen);
    p += len;
  }
}

static void begin_entry(struct tar *t) {
  unsigned char *h = t->hdr;
  int zero = 1;
  for (int i = 0; i < 512 && zero; i++) zero = h[i] == 0;
  if (zero) {
    if (t->pax_pending) bad_payload(t, "a pax header is not followed by an entry", NULL);
    t->done = 1; /* the first zero block ends the archive; tar_feed checks that only zeros follow */
    return;
  }
  unsigned sum = 0;
  for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
  if (sum != octal(t, h + 148, 8, "checksum")) bad_payload(t, "tar header checksum mismatch", NULL);
  if (memcmp(h + 257, "ustar\0" "00", 8) != 0) bad_payload(t, "a header that is not ustar", NULL);
  if (h[345] != 0) bad_payload(t, "a ustar prefix field", NULL);
  uint64_t size = octal(t, h + 124, 12, "size");
  octal(t, h + 136, 12, "mtime");
  uint64_t mode_bits = octal(t, h + 100, 8, "mode");
  char type = (char)h[156];
  char name[PATH_MAX], link[PATH_MAX];
  t->left = size;
  t->pad = (512 - size % 512) % 512;
  t->out = -1;
  t->in_pax = 0;
  if (type == 'x') {
    if (t->pax_pending) bad_payload(t, "two pax headers in a row", NULL);
    if (size > MAX_META) bad_payload(t, "pax header too large", NULL);
    t->in_pax = 1;
    t->pax_pending = 1;
    t->pax = realloc(t->pax, size + 1);
    t->pax_fill = 0;
    return;
  }
  t->pax_pending = 0;
  if (type != '0' && type != '\0' && type != '5' && type != '2') {
    char kind[2] = {type, 0};
    bad_payload(t, "unsupported tar entry type", kind);
  }
  if (t->pax_path) snprintf(name, sizeof name, "%s", t->pax_path);
  else if (!utf8_ok(h, strnlen((char *)h, 100))) bad_payload(t, "a name that is not UTF-8", NULL);
  else snprintf(name, sizeof name, "%.100s", (char *)h);
  if (t->pax_link) snprintf(link, sizeof link, "%s", t->pax_link);
  else if (!utf8_ok(h + 157, strnlen((char *)h + 157, 100))) bad_payload(t, "a link name that is not UTF-8", NULL);
  else snprintf(link, sizeof link, "%.100s", (char *)h + 157);
  size_t nl = strlen(name);
  while (nl > 1 && name[nl - 1] == '/') name[--nl] = 0;
  if (type != '0' && type != '\0' && size) bad_payload(t, "non-file entry with data", name);
  if (strcmp(name, ".") != 0) check_name(t, name), check_not_below_link(t, name);
  if (type == '5') {
    struct stat st;
    if (strcmp(name, ".") != 0 && mkdirat(t->root, name, 0755) != 0 &&
        !(errno == EEXIST && fstatat(t->root, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)))
      die("cannot create directory", name);
  } else if (type == '0' || type == '\0') {
    mode_t mode = (mode_bits & 0111) ? 0755 : 0644;
    t->out = openat(t->root, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (t->out < 0) die("cannot create file", name);
  } else {
    check_link_target(t, name, link);
    if (t->nlinks == t->cap) t->links = realloc(t->links, (t->cap = t->cap ? 2 * t->cap : 64) * sizeof *t->links);
    t->links[t->nlinks++] = (struct link){strdup(name), strdup(link)};
  }
  free(t->pax_path), t->pax_path = NULL;
  free(t->pax_link), t->pax_link = NULL;
}

static void write_all(int fd, const unsigned char *p, size_t n, const char *what) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die(errno == ENOSPC ? "no space left while extracting" : "cannot write", what);
    }
    p += w, n -= (size_t)w;
  }
}

/* Feeds decompressed tar bytes. */
static void tar_feed(struct tar *t, const unsigned char *p, size_t n) {
  while (n) {
    if (t->done) { /* after the end-of-archive block: zeros only */
      if (*p++) bad_payload(t, "data after the end-of-archive block", NULL);
      n--;
    } else if (t->left) {
      size_t take = t->left < n ? (size_t)t->left : n;
      if (t->in_pax) memcpy(t->pax + t->pax_fill, p, take), t->pax_fill += take;
      else if (t->out >= 0) write_all(t->out, p, take, t->where), t->written += take;
      t->left -= take, p += take, n -= take;
      if (!t->left) {
        if (t->in_pax) parse_pax(t);
        if (t->out >= 0) close(t->out), t->out = -1;
      }
    } else if (t->pad) {
      size_t take = t->pad < n ? (size_t)t->pad : n;
      t->pad -= take, p += take, n -= take;
    } else {
      size_t take = 512 - t->hdr_fill < n ? 512 - t->hdr_fill : n;
      memcpy(t->hdr + t->hdr_fill, p, take);
      t->hdr_fill += take, p += take, n -= take;
      if (t->hdr_fill == 512) {
        t->hdr_fill = 0;
        begin_entry(t);
        if (t->left == 0 && t->in_pax) parse_pax(t);
        if (t->left == 0 && t->out >= 0) close(t->out), t->out = -1;
      }
    }
  }
}

static time_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Decompresses the (already verified) payload into the empty directory `dest`. */
static void extract_to(struct onefile *of, const char *dest, int show_progress) {
  struct tar t = {0};
  t.where = dest;
  t.out = -1;
  t.root = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (t.root < 0) die("cannot open extraction directory", dest);
  long page = sysconf(_SC_PAGESIZE);
  off_t start = (off_t)(of->payload_offset / page * page);
  size_t skip = (size_t)(of->payload_offset - start);
  unsigned char *map = mmap(NULL, of->payload_size + skip, PROT_READ, MAP_PRIVATE, of->fd, start);
  if (map == MAP_FAILED) die("cannot map own file", strerror(errno));
  madvise(map, of->payload_size + skip, MADV_SEQUENTIAL);
  ZSTD_DCtx *z = ZSTD_createDCtx();
  if (!z) die("out of memory", NULL);
  size_t cap = ZSTD_DStreamOutSize() * 4;
  unsigned char *buf = malloc(cap);
  ZSTD_inBuffer in = {map + skip, (size_t)of->payload_size, 0};
  time_t last = now_ms();
  while (in.pos < in.size) {
    ZSTD_outBuffer out = {buf, cap, 0};
    size_t r = ZSTD_decompressStream(z, &out, &in);
    if (ZSTD_isError(r)) die("payload does not decompress", ZSTD_getErrorName(r));
    tar_feed(&t, buf, out.pos);
    if (show_progress && of->unpacked && now_ms() - last > 200) {
      last = now_ms();
      fprintf(stderr, "\r%s: first run, unpacking to %s: %3d%%", self_name, dest, (int)(100 * t.written / of->unpacked));
    }
  }
  for (;;) { /* flush what the decoder still holds */
    ZSTD_outBuffer out = {buf, cap, 0};
    size_t r = ZSTD_decompressStream(z, &out, &in);
    if (ZSTD_isError(r)) die("payload does not decompress", ZSTD_getErrorName(r));
    tar_feed(&t, buf, out.pos);
    if (out.pos < cap) break;
  }
  if (!t.done) die("bad payload (refusing to extract)", "the tar stream ends early");
  for (size_t i = 0; i < t.nlinks; i++)
    if (symlinkat(t.links[i].target, t.root, t.links[i].name) != 0) die("cannot create symlink", t.links[i].name);
  if (show_progress) fprintf(stderr, "\r\033[K");
  ZSTD_freeDCtx(z);
  munmap(map, of->payload_size + skip);
  free(buf);
  close(t.root);
}

/* ---- cache location ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void rm_tree(const char *path) { nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS); }

/* mkdir -p with mode 0700 for the directories it creates; 0 on success. */
static int mkdirs(const char *path) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
  return 0;
}

static char *absolute(const char *p) {
  if (p[0] == '/') return strdup(p);
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) die("cannot resolve relative PYPORT_CACHE", p);
  return join(cwd, p);
}

/* The configured bucket: $PYPORT_CACHE, else $XDG_CACHE_HOME/pyport, else $HOME/.cache/pyport. */
static char *primary_bucket(int *is_explicit) {
  const char *env = getenv("PYPORT_CACHE");
  char *root = NULL;
  *is_explicit = env && *env;
  if (*is_explicit) root = absolute(env);
  else if ((env = getenv("XDG_CACHE_HOME")) && env[0] == '/') root = join(env, "pyport");
  else if ((env = getenv("HOME")) && env[0] == '/') root = join(env, ".cache/pyport");
  return root ? join(root, BUCKET) : NULL;
}

/* The private fallback: ${TMPDIR:-/tmp}/pyport-<uid>, which must be a real directory owned by us
 * and closed to others. With `create`, makes it (0700). NULL (and a reason) when unusable. */
static char *fallback_bucket(int create, char *why, size_t whylen) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || tmp[0] != '/') tmp = "/tmp";
  char *dir;
  if (asprintf(&dir, "%s/pyport-%u", tmp, (unsigned)getuid()) < 0) die("out of memory", NULL);
  if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(why, whylen, "cannot create %s: %s", dir, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (lstat(dir, &st) != 0) {
    snprintf(why, whylen, "%s does not exist", dir);
    return NULL;
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077)) {
    snprintf(why, whylen, "refusing to use %s: it is %s", dir,
             !S_ISDIR(st.st_mode) ? "not a directory" : st.st_uid != getuid() ? "owned by another user" : "accessible to other users (mode is not 0700)");
    return NULL;
  }
  return join(dir, BUCKET);
}

/* The directory being extracted into, removed if extraction fails (die()). */
static char half_written[PATH_MAX];
static void remove_half_written(void) {
  if (half_written[0]) rm_tree(half_written);
}

static int verbose(void) {
  const char *v = getenv("PYPORT_ONEFILE_VERBOSE");
  return v && *v && strcmp(v, "0") != 0;
}

static int usable_dir(const char *bucket) { return mkdirs(bucket) == 0 && access(bucket, W_OK | X_OK) == 0; }

static char *entry_dir(const char *bucket, const struct onefile *of) {
  char *d;
  if (asprintf(&d, "%s/%s-%s", bucket, of->name, of->hex) < 0) die("out of memory", NULL);
  return d;
}

static int complete(const char *dir, struct stat *st) {
  char m[PATH_MAX];
  snprintf(m, sizeof m, "%s/" MARKER, dir);
  return stat(m, st) == 0;
}

static void explain_noexec(const char *dir) {
  struct statvfs vfs;
  if (statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC)) {
    fprintf(stderr,
            "%s: %s is on a filesystem mounted noexec, so the unpacked program cannot run from it.\n"
            "%s: set PYPORT_CACHE to a directory on a filesystem that allows exec, e.g. PYPORT_CACHE=$HOME/.cache/pyport\n",
            self_name, dir, self_name);
    exit(die_status);
  }
}

static const char *exec_dir;
static void exec_failed(const char *program) {
  (void)program;
  if (errno == EACCES && exec_dir) explain_noexec(exec_dir);
}

/*
 * Locks `<dir>.lock` with flock(2) (op: LOCK_EX or LOCK_SH, maybe | LOCK_NB) and returns its fd;
 * -2 when LOCK_NB found it held, -1 when it cannot be opened or locked. The kernel releases the
 * lock when the holder dies. A lock file may be removed by its exclusive holder (pyport cache
 * prune, clean): a waiter that then gets the lock of the removed file notices that the path no
 * longer names what it locked, and locks the new file instead.
 */
static int lock_entry(const char *dir, int op, int cloexec) {
  char lockpath[PATH_MAX];
  snprintf(lockpath, sizeof lockpath, "%s.lock", dir);
  for (;;) {
    int flags = O_NOFOLLOW | (cloexec ? O_CLOEXEC : 0);
    int fd = open(lockpath, O_RDWR | O_CREAT | flags, 0600);
    if (fd < 0 && (errno == EROFS || errno == EACCES)) fd = open(lockpath, O_RDONLY | flags);
    if (fd < 0) return -1;
    int rc;
    while ((rc = flock(fd, op)) != 0 && errno == EINTR) {}
    if (rc != 0) {
      int busy = errno == EWOULDBLOCK;
      close(fd);
      return busy ? -2 : -1;
    }
    struct stat held, named;
    if (fstat(fd, &held) == 0 && stat(lockpath, &named) == 0 && held.st_ino == named.st_ino && held.st_dev == named.st_dev) return fd;
    close(fd);
  }
}

/* Under the entry's lock: extract into a temp dir, rename into place, write the marker last. */
static void extract_into_cache(struct onefile *of, const char *self, const char *bucket, const char *dir) {
  char tmp[PATH_MAX];
  int lock = lock_entry(dir, LOCK_EX, 1);
  if (lock < 0) die("cannot lock", dir);
  struct stat st;
  if (!complete(dir, &st)) {
    /* Leftovers of runs that died (we hold the lock, so none is in progress). */
    rm_tree(dir);
    const char *base = strrchr(dir, '/') + 1;
    char prefix[PATH_MAX];
    snprintf(prefix, sizeof prefix, ".tmp-%s-", base);
    DIR *d = opendir(bucket);
    for (struct dirent *e; d && (e = readdir(d));) {
      if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
      char p[PATH_MAX];
      snprintf(p, sizeof p, "%s/%s", bucket, e->d_name);
      rm_tree(p);
    }
    if (d) closedir(d);

    verify_or_die(of, self);
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%d", bucket, base, (int)getpid());
    if (mkdir(tmp, 0700) != 0) die("cannot create temp directory", tmp);
    snprintf(half_written, sizeof half_written, "%s", tmp);
    before_die = remove_half_written;
    time_t t0 = now_ms();
    extract_to(of, tmp, isatty(2) && !verbose());
    chmod(tmp, 0755);
    if (rename(tmp, dir) != 0) die("cannot move the extraction into place", dir);
    snprintf(half_written, sizeof half_written, "%s", dir); /* until the marker is written */
    char marker[PATH_MAX];
    snprintf(marker, sizeof marker, "%s/" MARKER, dir);
    int m = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (m < 0) die("cannot write completion marker", marker);
    dprintf(m, "%s %s %s\n", of->name, of->version, of->hex);
    close(m);
    before_die = NULL;
    if (verbose()) fprintf(stderr, "%s: extracted %s %s to %s in %ld ms\n", self_name, of->name, of->version, dir, (long)(now_ms() - t0));
  }
  close(lock);
}

/* The extraction dir to run from: an existing complete one, else a fresh extraction. */
static char *ensure_extracted(struct onefile *of, const char *self) {
  int is_explicit;
  struct stat st;
  char why[PATH_MAX + 64] = "";
  char *bucket = primary_bucket(&is_explicit);
  if (bucket) {
    char *dir = entry_dir(bucket, of);
    if (complete(dir, &st)) {
      /* Record use at most daily (prune keeps recently used extractions); read-only is fine. */
      if (time(NULL) - st.st_mtime > 86400) {
        char m[PATH_MAX];
        snprintf(m, sizeof m, "%s/" MARKER, dir);
        utimensat(AT_FDCWD, m, NULL, 0);
      }
      return dir;
    }
    if (usable_dir(bucket)) {
      explain_noexec(bucket);
      extract_into_cache(of, self, bucket, dir);
      return dir;
    }
    if (is_explicit) {
      fprintf(stderr, "%s: cannot use PYPORT_CACHE=%s: %s\n%s: set PYPORT_CACHE to a writable directory, or unset it.\n", self_name, getenv("PYPORT_CACHE"), strerror(errno), self_name);
      exit(die_status);
    }
    free(dir);
  }
  char *fb = fallback_bucket(0, why, sizeof why);
  if (fb) {
    char *dir = entry_dir(fb, of);
    if (complete(dir, &st)) return dir;
  }
  fb = fallback_bucket(1, why, sizeof why);
  if (!fb || !usable_dir(fb)) {
    fprintf(stderr, "%s: no usable cache directory (%s%s%s).\n%s: set PYPORT_CACHE to a writable directory.\n", self_name, bucket ? bucket : "HOME is not set",
            bucket ? " is not writable; fallback: " : "; fallback: ", fb ? "not writable" : why, self_name);
    exit(die_status);
  }
  char *dir = entry_dir(fb, of);
  explain_noexec(fb);
  extract_into_cache(of, self, fb, dir);
  return dir;
}

/* ---- management commands ---- */

static int cmd_info(struct onefile *of, const char *self) {
  int is_explicit;
  struct stat st;
  char why[PATH_MAX + 64];
  char *bucket = primary_bucket(&is_explicit), *fb = fallback_bucket(0, why, sizeof why);
  char *dir = bucket ? entry_dir(bucket, of) : NULL;
  if ((!dir || !complete(dir, &st)) && fb && complete(entry_dir(fb, of), &st)) dir = entry_dir(fb, of);
  printf("file        %s\n", self);
  printf("format      pyport onefile %s\n", FORMAT_VERSION);
  printf("app         %s %s (entry %s)\n", of->name, of->version, of->entry);
  printf("payload     zstd, %.1f MiB compressed, %.1f MiB unpacked\n", of->payload_size / 1048576.0, of->unpacked / 1048576.0);
  printf("sha256      %s\n", of->hex);
  printf("cache       %s (%s)\n", dir ? dir : "(none: HOME and PYPORT_CACHE unset)", dir && complete(dir, &st) ? "extracted" : "not extracted yet");
  return 0;
}

static int cmd_verify(struct onefile *of, const char *self) {
  char got[65];
  if (verify(of, got)) {
    printf("%s: ok, sha256 %s\n", self, of->hex);
    return 0;
  }
  fprintf(stderr, "%s: corrupted: payload sha256 is %s, the trailer says %s\n", self, got, of->hex);
  return 1;
}

static int cmd_extract(struct onefile *of, const char *self, const char *dest) {
  if (!dest || !*dest) die("usage: PYPORT_ONEFILE_COMMAND=\"extract DIR\" (DIR must not exist)", NULL);
  struct stat st;
  if (lstat(dest, &st) == 0) die("refusing to extract into an existing path", dest);
  verify_or_die(of, self);
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.pyport-tmp-%d", dest, (int)getpid());
  if (mkdir(tmp, 0700) != 0) die("cannot create directory", tmp);
  snprintf(half_written, sizeof half_written, "%s", tmp);
  before_die = remove_half_written;
  extract_to(of, tmp, 0);
  chmod(tmp, 0755);
  if (rename(tmp, dest) != 0) die("cannot move the extraction into place", dest);
  before_die = NULL;
  printf("extracted %s %s to %s (run %s/%s)\n", of->name, of->version, dest, dest, of->entry);
  return 0;
}

static int cmd_clean(struct onefile *of) {
  int is_explicit, removed = 0;
  char why[PATH_MAX + 64];
  char *buckets[2] = {primary_bucket(&is_explicit), fallback_bucket(0, why, sizeof why)};
  for (int i = 0; i < 2; i++) {
    if (!buckets[i]) continue;
    char *dir = entry_dir(buckets[i], of), lockpath[PATH_MAX];
    struct stat st;
    if (lstat(dir, &st) != 0) continue;
    int lock = lock_entry(dir, LOCK_EX | LOCK_NB, 1);
    if (lock == -2) {
      printf("%s is in use by a running %s; not removed\n", dir, of->name);
      continue;
    }
    rm_tree(dir);
    snprintf(lockpath, sizeof lockpath, "%s.lock", dir);
    if (lock >= 0) unlink(lockpath), close(lock);
    printf("removed %s\n", dir);
    removed++;
  }
  if (!removed) printf("nothing to clean: %s is not extracted\n", of->name);
  return 0;
}

int main(int argc, char **argv) {
  char self[PATH_MAX];
  const char *argv0 = identify(argc, argv, self);
  char *invoked = invoked_path(argv0, self);
  struct onefile of;
  const char *cmd = getenv("PYPORT_ONEFILE_COMMAND");
  if (cmd && *cmd) die_status = 1;
  open_onefile(self, &of);

  if (cmd && *cmd) {
    if (strcmp(cmd, "info") == 0) return cmd_info(&of, invoked);
    if (strcmp(cmd, "verify") == 0) return cmd_verify(&of, invoked);
    if (strcmp(cmd, "clean") == 0) return cmd_clean(&of);
    if (strcmp(cmd, "extract") == 0) return cmd_extract(&of, self, argc > 1 ? argv[1] : NULL);
    if (strncmp(cmd, "extract ", 8) == 0) return cmd_extract(&of, self, cmd + 8);
    fprintf(stderr, "%s: unknown PYPORT_ONEFILE_COMMAND %s; use info, verify, \"extract DIR\" or clean\n", self_name, cmd);
    return 2;
  }

  /* The running app holds a shared lock on its extraction (the descriptor stays open across
   * exec), so prune and clean, which need it exclusively, leave the extraction alone. */
  char *dir;
  for (;;) {
    dir = ensure_extracted(&of, self);
    int held = lock_entry(dir, LOCK_SH, 0);
    struct stat st;
    if (held < 0 || complete(dir, &st)) break; /* unlockable (read-only cache): run anyway */
    close(held); /* removed between the check and the lock: extract again */
  }
  close(of.fd);
  char *entry = join(dir, of.entry);
  char *entry_parent = strdup(entry);
  *strrchr(entry_parent, '/') = 0;
  if (setenv("PYPORT_ONEFILE", invoked, 1) != 0) die("cannot set PYPORT_ONEFILE", NULL);
  exec_dir = dir;
  on_exec_failure = exec_failed;
  char *spec = read_spec(entry);
  if (spec) launch(spec, entry_parent, invoked, argc, argv);
  /* An sh launcher (pyport built without a C compiler): run it as is. */
  argv[0] = invoked;
  execv(entry, argv);
  exec_failed(entry);
  fprintf(stderr, "%s: cannot execute %s: %s\n", self_name, entry, strerror(errno));
  return 127;
}
