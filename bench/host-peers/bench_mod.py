"""The functions bench/host-calls calls through every bridge. Plain Python with no imports: what
a bridge needs on the Python side (python-shell's JSON lines loop) lives in that bridge's own
script, pyshell_server.py, so no bridge pays for another's protocol."""


def echo(x):
    return x


def identity(b):
    return b
