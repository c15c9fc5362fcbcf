"""python-shell's side of bench/host-calls: the JSON lines loop a python-shell user writes in
the script python-shell runs (its protocol lives in the user's code). Bytes travel as base64."""
import base64
import json
import sys


# The same two functions as bench_mod.py, here because python-shell runs this file as a script
# (with -I, Python 3.11+ does not put the script's directory on sys.path).
def echo(x):
    return x


def identity(b):
    return b


def main():
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
    main()
