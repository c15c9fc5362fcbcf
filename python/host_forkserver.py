# pyport's fork server: python -I host_boot.py CACHE VERSION --fork-server [--path P]... [--preload M]...
#
# Starts once, imports what every worker of one environment imports (the interpreter, pyport's
# worker modules, the --preload modules), and then forks workers on request: a fork costs about
# a millisecond of CPU where starting an interpreter costs tens. Used by src/host/fork-server.ts.
#
# fd 3 (a socket): requests, each a 4-byte little-endian length and JSON, and this server's
#   replies. {"op": "fork", "argv": [...], "fds": N, "cwd": ..., "env": {...}} comes with N
#   descriptors (SCM_RIGHTS): the child's fds 3, 4, 1 and 2, the pipe its exit status goes to,
#   then the ones it inherits as 5, 6, ...; the reply is an int32, the child's pid or -errno.
#   {"op": "reap", "pid": P} reaps a child whose exit was reported (until then its pid cannot be
#   reused, so the host's kill() can never reach another process). {"op": "close"}, or the end
#   of the stream: fork no more, reap what exits, and leave when no child is left.
# fd 4: one line once the preloads are imported: "ready", or "error <message>".
#
# The child runs the worker's main (host_worker.py) with `argv` and exits with its status; it
# shares the server's hash seed (as any forked process does). This file runs as a namespace of
# host_boot.py, which supplies `worker_main` and `install_host_module`.
import fcntl
import json
import os
import select
import socket
import struct
import sys

import _signal as signal

_HEAD = struct.Struct("<I")
_STATUS = struct.Struct("<ii")


def serve(argv):
    control = socket.socket(fileno=3)
    paths, preload = [], []
    for flag, value in zip(argv[0::2], argv[1::2]):
        (paths if flag == "--path" else preload).append(value)
    sys.path[:0] = paths
    install_host_module(None)  # noqa: F821 - the worker binds it to its channel after the fork
    try:
        for m in preload:
            __import__(m)
    except BaseException as e:  # noqa: BLE001 - reported; the host then spawns workers instead
        os.write(4, ("error %s: %s\n" % (type(e).__name__, e)).encode("utf-8", "replace"))
        return 1
    import gc

    gc.collect()
    gc.freeze()  # the imported objects stay out of later collections: fewer pages copied per child
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    os.write(4, b"ready\n")
    children = {}  # pid -> its exit-status pipe, or None once reported
    fds, pending = [], b""
    closing = False
    while not (closing and not children):
        ready, _, _ = select.select([wake_r] if closing else [control, wake_r], [], [])
        if wake_r in ready:
            while _drain(wake_r):
                pass
        if control in ready:
            try:
                data, ancillary, _, _ = control.recvmsg(65536, socket.CMSG_SPACE(4 * 16))
            except OSError:
                data, ancillary = b"", []
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(struct.unpack("%di" % (len(payload) // 4), payload[: len(payload) // 4 * 4]))
            if not data:
                closing = True
            pending += data
            while len(pending) >= 4 and len(pending) >= 4 + _HEAD.unpack_from(pending)[0]:
                size = _HEAD.unpack_from(pending)[0]
                request = json.loads(pending[4 : 4 + size])
                pending = pending[4 + size :]
                op = request["op"]
                if op == "fork":
                    given, fds = fds[: request["fds"]], fds[request["fds"] :]
                    pid = _fork(request, given, children, control, wake_r, wake_w)
                    control.sendall(struct.pack("<i", pid))
                elif op == "reap":
                    _reap(request["pid"], children)
                elif op == "close":
                    closing = True
        _report_exits(children, closing)
    return 0


def _drain(fd):
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def _fork(request, given, children, control, wake_r, wake_w):
    """Forks a worker on the descriptors `given`; returns its pid, or -errno."""
    if len(given) < 5:
        for fd in given:
            os.close(fd)
        return -22  # EINVAL
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError as e:
        for fd in given:
            os.close(fd)
        return -(e.errno or 12)
    if pid == 0:
        _child(request, given, [control.detach(), wake_r, wake_w] + [fd for fd in children.values() if fd is not None])
    for i, fd in enumerate(given):
        if i != 4:
            os.close(fd)
    children[pid] = given[4]
    return pid


def _child(request, given, server_fds):
    """In the forked child: the worker on the given descriptors, in the request's working
    directory and environment, as if started there. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in server_fds:
            os.close(fd)
        os.close(given[4])  # the exit-status pipe is the server's to write
        targets = [3, 4, 1, 2] + list(range(5, 5 + len(given) - 5))
        sources = given[:4] + given[5:]
        # Everything above the targets first, so that no dup2 overwrites a later source.
        high = []
        for fd in sources:
            high.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, max(targets) + 1))
            os.close(fd)
        for src, dst in zip(high, targets):
            os.dup2(src, dst, inheritable=False)
            os.close(src)
        # Only now, with its own stderr: a working directory that is gone fails this worker.
        if request.get("cwd"):
            os.chdir(request["cwd"])
        if request.get("env") is not None:
            os.environ.clear()
            os.environ.update(request["env"])
        argv = request["argv"]
        sys.argv = ["host_boot.py"] + argv
        code = worker_main(["3", "4"] + argv)  # noqa: F821 - supplied by host_boot.py
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001 - the host reads stderr's tail
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)


def _report_exits(children, closing):
    """Writes each exited child's status to its pipe, leaving it unreaped (reaped now when closing)."""
    for pid, fd in list(children.items()):
        if fd is None:
            if closing:
                _reap(pid, children)
            continue
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            info = None
            children.pop(pid)
            os.close(fd)
            continue
        if info is None:
            continue
        exited = info.si_code == os.CLD_EXITED
        try:
            os.write(fd, _STATUS.pack(info.si_status if exited else -1, 0 if exited else info.si_status))
        except OSError:
            pass  # the host closed its end: nobody is waiting for this status
        os.close(fd)
        children[pid] = None
        if closing:
            _reap(pid, children)


def _reap(pid, children):
    if pid in children and children[pid] is None:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        del children[pid]
