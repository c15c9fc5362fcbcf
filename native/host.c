/*
 * host: a Node addon (Node-API) with what pyport's host needs from the C library directly.
 *
 *   pollRead(fd, buffer, offset, budgetUs) -> n >= 0  bytes read into buffer[offset..] (0: end of stream)
 *                                            -1      nothing arrived within budgetUs, or a
 *                                                    yield showed this CPU is shared (below)
 *                                            -2      a read error other than EAGAIN (the caller
 *                                                    leaves the descriptor to libuv)
 *   spawnWorker(file, argv, envp, cwd, inherit) -> [pid, toChild, fromChild, stdout, stderr, exited]
 *   reap(pid) -> undefined
 *   forkWorker(controlFd, request, inherit) -> [pid, toChild, fromChild, stdout, stderr, exited]
 *   memfdPair() -> [fd, fd]                        two anonymous memory files (close-on-exec)
 *   statPath(path) -> [isDir, dev, ino, size, mtimeMs] | null (no such file)
 *   flockNb(fd, exclusive) -> true (taken) | false (another holder has it)
 *
 * pollRead picks up a worker's quick reply without an event-loop wake-up. It polls the
 * non-blocking descriptor with read(2), yielding the CPU between tries. A yield that takes long
 * (another task ran: the worker shares this CPU) ends the polling after one more try: on a shared
 * CPU, sleeping hands over at once, while polling makes both processes time-slice (measured
 * here: ~50 µs a call polling vs ~22 µs sleeping, and ~22 µs polling across two CPUs vs ~130 µs
 * sleeping). No JS exception and no garbage per try (a failed fs.readSync costs ~7 µs and an
 * Error object).
 *
 * spawnWorker starts a worker with posix_spawn, which glibc runs as a vfork-style clone: no copy
 * of this process's page tables and no copy-on-write faults afterwards, so it takes ~0.4 ms where
 * Node's fork-based spawn takes 1.5-4 ms for a Node process. The child gets /dev/null on fd 0,
 * pipes on 1 and 2, a socket pair end on 3 (to the child) and on 4 (from it), `inherit[i]` on
 * 5 + i, default signal dispositions and an empty signal mask; everything else this process has
 * open is close-on-exec (as Node and libuv open every descriptor). It returns the parent's ends,
 * all close-on-exec and non-blocking, for net.Socket to take over, and `exited`, a pipe that
 * receives two int32s (exit code or -1, signal number or 0) when the child has exited. A thread
 * waits for that without reaping the child (WNOWAIT): until the host calls reap(pid), the pid
 * cannot be reused, so a kill() before the host has seen the exit can never hit another process.
 * Errors throw an Error whose code is the errno name (ENOENT, ...); ENOSYS means "cannot spawn
 * with a working directory here" (glibc before 2.29), and the host uses Node's spawn instead.
 *
 * forkWorker asks a fork server (python/host_forkserver.py) on the socket `controlFd` to fork a
 * worker: it makes the same channels as spawnWorker, sends the child's ends (then `inherit`)
 * with the request (4-byte little-endian length, then `request`) in one SCM_RIGHTS message,
 * closes its copies, and waits up to 2 s for the server's reply, an int32: the pid, or -errno.
 * The server writes the exit status into `exited` as the watcher thread does, and keeps the
 * child unreaped until asked to reap it (src/host/fork-server.ts). ETIMEDOUT or EPIPE: the
 * server is stuck or gone, and the host stops using it.
 *
 * statPath is stat(2) for the checks made before the first worker is spawned: fs.statSync's
 * first use in a process costs ~0.3 ms of JS set-up on this machine, on the start-up path.
 *
 * memfdPair makes the host's two arena files (src/host/arena.ts) with memfd_create: no name in
 * any directory, ever, and one call instead of an open and an unlink each.
 *
 * Only the few Node-API declarations used are written out here: Node-API is a stable C ABI, and
 * this way the build needs no Node headers. The module is found through the well-known
 * napi_register_module_v1 symbol.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* an enum; 0 is napi_ok */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
typedef enum { napi_undefined, napi_null, napi_boolean, napi_number, napi_string } napi_valuetype; /* the leading members */

extern napi_status napi_get_cb_info(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, napi_value *this_arg, void **data);
extern napi_status napi_get_value_int32(napi_env env, napi_value value, int32_t *result);
extern napi_status napi_get_value_string_utf8(napi_env env, napi_value value, char *buf, size_t bufsize, size_t *result);
extern napi_status napi_get_array_length(napi_env env, napi_value value, uint32_t *result);
extern napi_status napi_get_element(napi_env env, napi_value object, uint32_t index, napi_value *result);
extern napi_status napi_typeof(napi_env env, napi_value value, napi_valuetype *result);
extern napi_status napi_get_buffer_info(napi_env env, napi_value value, void **data, size_t *length);
extern napi_status napi_create_int32(napi_env env, int32_t value, napi_value *result);
extern napi_status napi_create_double(napi_env env, double value, napi_value *result);
extern napi_status napi_get_boolean(napi_env env, bool value, napi_value *result);
extern napi_status napi_get_null(napi_env env, napi_value *result);
extern napi_status napi_create_array_with_length(napi_env env, size_t length, napi_value *result);
extern napi_status napi_set_element(napi_env env, napi_value object, uint32_t index, napi_value value);
extern napi_status napi_get_undefined(napi_env env, napi_value *result);
extern napi_status napi_create_function(napi_env env, const char *name, size_t length, napi_callback cb, void *data, napi_value *result);
extern napi_status napi_set_named_property(napi_env env, napi_value object, const char *name, napi_value value);
extern napi_status napi_throw_error(napi_env env, const char *code, const char *msg);
extern napi_status napi_throw_type_error(napi_env env, const char *code, const char *msg);

/* A yield on an otherwise idle CPU takes ~0.4 µs here; one that ran another task takes longer. */
#define SHARED_YIELD_NS 5000
/* The child's fds: 0-4 as described above, then the inherited ones. */
#define FIRST_INHERITED 5
#define MAX_INHERITED 8

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static napi_value poll_read(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd, offset, budget_us;
  void *data;
  size_t length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 4 || napi_get_value_int32(env, argv[0], &fd) != 0 ||
      napi_get_buffer_info(env, argv[1], &data, &length) != 0 || napi_get_value_int32(env, argv[2], &offset) != 0 ||
      napi_get_value_int32(env, argv[3], &budget_us) != 0 || offset < 0 || (size_t)offset >= length || budget_us < 0) {
    napi_throw_type_error(env, NULL, "pollRead(fd, buffer, offset, budgetUs): bad arguments");
    return NULL;
  }
  int32_t result;
  int shared = 0;
  int64_t deadline = now_ns() + (int64_t)budget_us * 1000;
  for (;;) {
    ssize_t n = read(fd, (char *)data + offset, length - (size_t)offset);
    if (n >= 0) {
      result = (int32_t)n;
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      result = -2;
      break;
    }
    int64_t before = now_ns();
    if (before >= deadline || shared) {
      result = -1;
      break;
    }
    sched_yield();
    shared = now_ns() - before > SHARED_YIELD_NS;
  }
  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
}

/* A JS array of these numbers. */
static napi_value number_array(napi_env env, const double *values, uint32_t n) {
  napi_value result;
  napi_create_array_with_length(env, n, &result);
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    napi_create_double(env, values[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

/* -- spawnWorker ---------------------------------------------------------------------------- */

/* A JS string as a malloc'd C string, or NULL (a type error has been thrown). */
static char *get_string(napi_env env, napi_value v) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != 0) {
    napi_throw_type_error(env, NULL, "spawnWorker: expected a string");
    return NULL;
  }
  char *s = malloc(n + 1);
  if (s) napi_get_value_string_utf8(env, v, s, n + 1, &n);
  return s;
}

/* A JS array of strings as a NULL-terminated malloc'd array, or NULL (an error has been thrown). */
static char **get_strings(napi_env env, napi_value v) {
  uint32_t n;
  if (napi_get_array_length(env, v, &n) != 0) {
    napi_throw_type_error(env, NULL, "spawnWorker: expected an array of strings");
    return NULL;
  }
  char **out = calloc(n + 1, sizeof(char *));
  for (uint32_t i = 0; out && i < n; i++) {
    napi_value e;
    napi_get_element(env, v, i, &e);
    if (!(out[i] = get_string(env, e))) {
      for (uint32_t j = 0; j < i; j++) free(out[j]);
      free(out);
      return NULL;
    }
  }
  return out;
}

static void free_strings(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

/* `inherit`: a JS array of at most MAX_INHERITED descriptors into fds[], their count into *n;
 * -1 when it is not one (a type error has been thrown). */
static int get_fds(napi_env env, napi_value v, int *fds, uint32_t *n) {
  if (napi_get_array_length(env, v, n) != 0 || *n > MAX_INHERITED) {
    napi_throw_type_error(env, NULL, "inherit must be an array of at most 8 descriptors");
    return -1;
  }
  for (uint32_t i = 0; i < *n; i++) {
    napi_value e;
    napi_get_element(env, v, i, &e);
    if (napi_get_value_int32(env, e, &fds[i]) != 0 || fds[i] < 0) {
      napi_throw_type_error(env, NULL, "inherit must hold descriptors");
      return -1;
    }
  }
  return 0;
}

struct watch {
  pid_t pid;
  int fd;
};

/* Waits until the child has exited (leaving it unreaped), then writes how into the pipe. */
static void *watch_child(void *arg) {
  struct watch w = *(struct watch *)arg;
  free(arg);
  siginfo_t si;
  int32_t status[2] = {-1, 0};
  int rc;
  do {
    memset(&si, 0, sizeof si);
    rc = waitid(P_PID, (id_t)w.pid, &si, WEXITED | WNOWAIT);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) {
    if (si.si_code == CLD_EXITED) status[0] = si.si_status;
    else status[1] = si.si_status;
  }
  ssize_t ignored = write(w.fd, status, sizeof status);
  (void)ignored;
  close(w.fd);
  return NULL;
}

static int set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_all(int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
}

static const char *errno_code(int e) {
  switch (e) {
  case ENOENT: return "ENOENT";
  case EACCES: return "EACCES";
  case ENOEXEC: return "ENOEXEC";
  case ENOTDIR: return "ENOTDIR";
  case ENOMEM: return "ENOMEM";
  case EAGAIN: return "EAGAIN";
  case EMFILE: return "EMFILE";
  case ENFILE: return "ENFILE";
  case E2BIG: return "E2BIG";
  case ELOOP: return "ELOOP";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case ETXTBSY: return "ETXTBSY";
  case ENOSYS: return "ENOSYS";
  case ETIMEDOUT: return "ETIMEDOUT";
  case EPIPE: return "EPIPE";
  case ECONNRESET: return "ECONNRESET";
  default: return "EIO";
  }
}

/* Throws an Error "<errno name> (<what>: <strerror>)" with the errno name as its code, and returns NULL. */
static napi_value throw_errno(napi_env env, int e, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s (%s%s%s)", errno_code(e), what ? what : "", what ? ": " : "", strerror(e));
  napi_throw_error(env, errno_code(e), msg);
  return NULL;
}

/*
 * The parent's side: [0] to the child, [1] from it, [2] stdout, [3] stderr, [4] exited.
 * The child's side: its fds 3, 4, 1, 2, and the exit pipe's write end (kept here).
 */
static int make_channels(int parent[5], int child[5]) {
  int sv[2];
  for (int i = 0; i < 5; i++) parent[i] = child[i] = -1;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -1;
  parent[0] = sv[0], child[0] = sv[1];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -1;
  parent[1] = sv[0], child[1] = sv[1];
  if (pipe2(sv, O_CLOEXEC) < 0) return -1;
  parent[2] = sv[0], child[2] = sv[1];
  if (pipe2(sv, O_CLOEXEC) < 0) return -1;
  parent[3] = sv[0], child[3] = sv[1];
  if (pipe2(sv, O_CLOEXEC) < 0) return -1;
  parent[4] = sv[0], child[4] = sv[1];
  return 0;
}

static napi_value spawn_worker(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 5) {
    napi_throw_type_error(env, NULL, "spawnWorker(file, argv, envp, cwd, inherit): bad arguments");
    return NULL;
  }
  char *file = NULL, *cwd = NULL, **args = NULL, **envp = NULL;
  int inherit[MAX_INHERITED], n_inherit = 0, parent[5], child[5], high[5 + MAX_INHERITED];
  napi_value result = NULL;
  for (int i = 0; i < 5 + MAX_INHERITED; i++) high[i] = -1;
  for (int i = 0; i < 5; i++) parent[i] = child[i] = -1;
  napi_valuetype cwd_type;
  uint32_t n;
  if (!(file = get_string(env, argv[0])) || !(args = get_strings(env, argv[1])) || !(envp = get_strings(env, argv[2]))) goto out;
  napi_typeof(env, argv[3], &cwd_type);
  if (cwd_type == napi_string && !(cwd = get_string(env, argv[3]))) goto out;
  if (get_fds(env, argv[4], inherit, &n) < 0) goto out;
  n_inherit = (int)n;
#if !(defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29)))
  if (cwd) {
    throw_errno(env, ENOSYS, "spawnWorker: a working directory needs glibc 2.29+");
    goto out;
  }
#endif
  if (make_channels(parent, child) < 0) {
    throw_errno(env, errno, "spawnWorker: socketpair/pipe");
    goto out;
  }
  /* Every source above the child's target numbers, so that one dup2 cannot overwrite the
   * source of a later one. */
  int sources[5 + MAX_INHERITED] = {child[0], child[1], child[2], child[3]};
  for (int i = 0; i < n_inherit; i++) sources[4 + i] = inherit[i];
  for (int i = 0; i < 4 + n_inherit; i++) {
    if ((high[i] = fcntl(sources[i], F_DUPFD_CLOEXEC, FIRST_INHERITED + MAX_INHERITED)) < 0) {
      throw_errno(env, errno, "spawnWorker: dup");
      goto out;
    }
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, high[0], 3);
  posix_spawn_file_actions_adddup2(&fa, high[1], 4);
  posix_spawn_file_actions_adddup2(&fa, high[2], 1);
  posix_spawn_file_actions_adddup2(&fa, high[3], 2);
  for (int i = 0; i < n_inherit; i++) posix_spawn_file_actions_adddup2(&fa, high[4 + i], FIRST_INHERITED + i);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
  if (cwd) posix_spawn_file_actions_addchdir_np(&fa, cwd);
#endif
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid;
  int rc = posix_spawn(&pid, file, &fa, &attr, args, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    throw_errno(env, rc, NULL);
    goto out;
  }
  struct watch *w = malloc(sizeof *w);
  pthread_t thread;
  pthread_attr_t tattr;
  pthread_attr_init(&tattr);
  pthread_attr_setdetachstate(&tattr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&tattr, 64 * 1024);
  if (w) *w = (struct watch){pid, child[4]};
  if (!w || pthread_create(&thread, &tattr, watch_child, w) != 0) {
    /* Nobody could report the exit: stop the child rather than leave it unwatched. */
    free(w);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    pthread_attr_destroy(&tattr);
    throw_errno(env, EAGAIN, "spawnWorker: thread");
    goto out;
  }
  pthread_attr_destroy(&tattr);
  child[4] = -1; /* the thread writes and closes it */
  for (int i = 0; i < 5; i++) set_nonblocking(parent[i]);
  double values[6] = {pid, parent[0], parent[1], parent[2], parent[3], parent[4]};
  result = number_array(env, values, 6);
  for (int i = 0; i < 5; i++) parent[i] = -1; /* handed over */
out:
  close_all(parent, 5);
  close_all(child, 5);
  close_all(high, 5 + MAX_INHERITED);
  free(file);
  free(cwd);
  free_strings(args);
  free_strings(envp);
  return result;
}

/* Reaps a child whose exit spawnWorker's pipe has reported; its pid may be reused afterwards. */
static napi_value reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], undefined;
  int32_t pid;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 1 || napi_get_value_int32(env, argv[0], &pid) != 0 || pid <= 0) {
    napi_throw_type_error(env, NULL, "reap(pid): bad arguments");
    return NULL;
  }
  while (waitpid(pid, NULL, WNOHANG) < 0 && errno == EINTR) {
  }
  napi_get_undefined(env, &undefined);
  return undefined;
}

/* Waits for `fd` to be ready for `events` until the deadline; 0 when ready, else an errno. */
static int wait_fd(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = (deadline - now_ns()) / 1000000;
    if (left <= 0) return ETIMEDOUT;
    struct pollfd p = {fd, events, 0};
    int rc = poll(&p, 1, (int)left);
    if (rc > 0) return (p.revents & (POLLERR | POLLNVAL)) ? EPIPE : 0;
    if (rc < 0 && errno != EINTR) return errno;
  }
}

#define FORK_REPLY_NS 2000000000LL

static napi_value fork_worker(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t control;
  void *request;
  size_t request_len;
  uint32_t n;
  int inherit[MAX_INHERITED], parent[5], child[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 3 || napi_get_value_int32(env, argv[0], &control) != 0 ||
      napi_get_buffer_info(env, argv[1], &request, &request_len) != 0 || request_len > 60000) {
    napi_throw_type_error(env, NULL, "forkWorker(controlFd, request, inherit): bad arguments");
    return NULL;
  }
  if (get_fds(env, argv[2], inherit, &n) < 0) return NULL;
  if (make_channels(parent, child) < 0) {
    int e = errno;
    close_all(parent, 5);
    close_all(child, 5);
    return throw_errno(env, e, "forkWorker: socketpair/pipe");
  }
  int fds[5 + MAX_INHERITED] = {child[0], child[1], child[2], child[3], child[4]};
  for (uint32_t i = 0; i < n; i++) fds[5 + i] = inherit[i];
  size_t nfds = 5 + n;
  char *msg = malloc(4 + request_len);
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * (5 + MAX_INHERITED))];
  } control_buf;
  int e = 0;
  if (!msg) e = ENOMEM;
  else {
    uint32_t len = (uint32_t)request_len;
    for (int i = 0; i < 4; i++) msg[i] = (char)((len >> (8 * i)) & 0xff);
    memcpy(msg + 4, request, request_len);
    memset(&control_buf, 0, sizeof control_buf);
    struct iovec iov = {msg, 4 + request_len};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control_buf.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    int64_t deadline = now_ns() + FORK_REPLY_NS;
    /* The socket is non-blocking; the message is small, so one sendmsg takes all of it. */
    for (;;) {
      ssize_t sent = sendmsg(control, &mh, MSG_NOSIGNAL);
      if (sent == (ssize_t)(4 + request_len)) break;
      if (sent >= 0) {
        e = EPIPE; /* a partial message: the stream is out of step */
        break;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN || (e = wait_fd(control, POLLOUT, deadline)) != 0) {
        if (!e) e = errno;
        break;
      }
    }
    int32_t reply = 0;
    size_t got = 0;
    while (!e && got < sizeof reply) {
      ssize_t r = read(control, (char *)&reply + got, sizeof reply - got);
      if (r > 0) got += (size_t)r;
      else if (r == 0) e = EPIPE;
      else if (errno == EINTR) continue;
      else if (errno != EAGAIN) e = errno;
      else e = wait_fd(control, POLLIN, deadline);
    }
    if (!e && reply <= 0) e = reply < 0 ? -reply : EIO;
    if (!e) {
      free(msg);
      close_all(child, 5); /* the server has its own copies */
      for (int i = 0; i < 5; i++) set_nonblocking(parent[i]);
      double values[6] = {reply, parent[0], parent[1], parent[2], parent[3], parent[4]};
      return number_array(env, values, 6);
    }
  }
  free(msg);
  close_all(parent, 5);
  close_all(child, 5);
  return throw_errno(env, e, "forkWorker");
}

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#endif

static napi_value memfd_pair(napi_env env, napi_callback_info info) {
  int fds[2] = {-1, -1};
  for (int i = 0; i < 2; i++) {
#ifdef SYS_memfd_create
    fds[i] = (int)syscall(SYS_memfd_create, "pyport-arena", MFD_CLOEXEC);
#else
    errno = ENOSYS;
#endif
    if (fds[i] < 0) {
      int e = errno;
      close_all(fds, 2);
      return throw_errno(env, e, "memfd_create");
    }
  }
  double values[2] = {fds[0], fds[1]};
  return number_array(env, values, 2);
}

static napi_value stat_path(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  char *path = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 1) {
    napi_throw_type_error(env, NULL, "statPath(path): bad arguments");
    return NULL;
  }
  if (!(path = get_string(env, argv[0]))) return NULL; /* a type error is pending */
  struct stat st;
  int rc = stat(path, &st);
  int e = errno;
  free(path);
  if (rc != 0) {
    if (e == ENOENT || e == ENOTDIR) {
      napi_get_null(env, &result);
      return result;
    }
    return throw_errno(env, e, "stat");
  }
  double values[5] = {S_ISDIR(st.st_mode) ? 1 : 0, (double)st.st_dev, (double)st.st_ino, (double)st.st_size,
                      (double)st.st_mtim.tv_sec * 1000 + (double)(st.st_mtim.tv_nsec / 1000000)};
  return number_array(env, values, 5);
}

/* flock(2) with LOCK_NB: the cache's locks (src/store/lock.ts). The kernel drops the lock when
 * the holder dies, so a killed process never leaves a lock behind. */
static napi_value flock_nb(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd, exclusive;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 2 || napi_get_value_int32(env, argv[0], &fd) != 0 ||
      napi_get_value_int32(env, argv[1], &exclusive) != 0) {
    napi_throw_type_error(env, NULL, "flockNb(fd, exclusive): bad arguments");
    return NULL;
  }
  int rc;
  while ((rc = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB)) != 0 && errno == EINTR) {}
  if (rc != 0 && errno != EWOULDBLOCK) return throw_errno(env, errno, "flock");
  napi_get_boolean(env, rc == 0, &result);
  return result;
}

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  if (napi_create_function(env, name, strlen(name), cb, NULL, &fn) == 0) napi_set_named_property(env, exports, name, fn);
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  export_function(env, exports, "pollRead", poll_read);
  export_function(env, exports, "spawnWorker", spawn_worker);
  export_function(env, exports, "reap", reap);
  export_function(env, exports, "forkWorker", fork_worker);
  export_function(env, exports, "memfdPair", memfd_pair);
  export_function(env, exports, "statPath", stat_path);
  export_function(env, exports, "flockNb", flock_nb);
  return exports;
}
