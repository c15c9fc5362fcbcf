"""A tiny script to run with a portable runtime: shows where Python runs from."""
import platform
import ssl
import sqlite3
import sys

print(f"Hello from Python {platform.python_version()} at {sys.prefix}")
print(f"  executable: {sys.executable}")
print(f"  OpenSSL: {ssl.OPENSSL_VERSION}; SQLite: {sqlite3.sqlite_version}")
