"""The functions bench/host-calls calls through every bridge."""
import base64
import json
import sys


def echo(x):
    return x


def identity(b):
    return b


def pyshell_server():
    """python-shell's protocol: JSON lines on stdin/stdout; bytes travel as base64 text."""
    out = sys.stdout
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["fn"] == "echo":
            result = echo(msg["arg"])
        else:
            result = base64.b64encode(identity(base64.b64decode(msg["arg"]))).decode()
        out.write(json.dumps({"id": msg["id"], "result": result}) + "\n")
        out.flush()


if __name__ == "__main__":
    pyshell_server()
