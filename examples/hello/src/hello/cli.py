"""hello: greets, reports where it runs from, and passes exit codes and stdin through."""
import argparse
import os
import platform
import sys

from hello import __version__


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hello", description=__doc__)
    parser.add_argument("name", nargs="?", default="world")
    parser.add_argument("--version", action="version", version="hello " + __version__)
    parser.add_argument("--where", action="store_true", help="print the interpreter and argv[0]")
    parser.add_argument("--echo-stdin", action="store_true", help="copy stdin to stdout")
    parser.add_argument("--exit", type=int, default=0, help="exit with this status")
    parser.add_argument("--resources", action="store_true", help="read package data three ways")
    args = parser.parse_args(argv)
    if args.resources:
        import importlib.resources
        import pkgutil

        import hello

        print(importlib.resources.files("hello").joinpath("greeting.txt").read_text().strip())
        print(pkgutil.get_data("hello", "greeting.txt").decode().strip())
        with open(os.path.join(os.path.dirname(hello.__file__), "greeting.txt")) as f:
            print(f.read().strip())
        print("json from %s" % __import__("json").__file__)
    elif args.echo_stdin:
        sys.stdout.write(sys.stdin.read())
    elif args.where:
        print("argv0=%s" % sys.argv[0])
        print("executable=%s" % sys.executable)
        print("prefix=%s" % sys.prefix)
        print("isolated=%s" % sys.flags.isolated)
        print("pythonpath=%s" % os.environ.get("PYTHONPATH", ""))
        print("onefile=%s" % os.environ.get("PYPORT_ONEFILE", ""))
    else:
        print("Hello, %s! (Python %s on %s)" % (args.name, platform.python_version(), platform.machine()))
    return args.exit


if __name__ == "__main__":
    sys.exit(main())
