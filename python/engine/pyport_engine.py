"""pyport plugin engine, the Python side: runs one plugin invocation in a host worker.

src/engine/ calls `invoke(trigger, plugin, kind, payload, args)` through pyport's host API. The
plugin is an InfluxDB 3 processing-engine plugin (a .py file, or a directory with __init__.py),
loaded again whenever one of its files changes (a call already running keeps the old code). It
gets the same API object InfluxDB passes as `influxdb3_local`, and `LineBuilder` as a builtin.
Calls back into the engine (logs, query, write_sync, cache, host functions) go through
`pyport_host` (src/host: Python.start({ hostFunctions })).
"""
import builtins
import datetime
import importlib.util
import json
import os
import pickle
import stat
import sys

import pyport_host

# -- LineBuilder -----------------------------------------------------------------------------


# Escaped names and tag values repeat from line to line: kept, up to a bound, once escaped.
_ESCAPED = ({}, {})  # measurement names; tag keys, tag values and field keys
_ESCAPED_MAX = 100_000


def _escape_measurement(text):
    done = _ESCAPED[0].get(text)
    if done is None:
        done = text.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")
        if len(_ESCAPED[0]) < _ESCAPED_MAX:
            _ESCAPED[0][text] = done
    return done


def _escape_key(text):
    done = _ESCAPED[1].get(text)
    if done is None:
        done = text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
        if len(_ESCAPED[1]) < _ESCAPED_MAX:
            _ESCAPED[1][text] = done
    return done


def _key(kind, key):
    if key.__class__ is not str or not key or "\n" in key or "\r" in key:
        if not isinstance(key, str) or not key:
            raise ValueError("%s key must be a non-empty string, got %r" % (kind, key))
        if "\n" in key or "\r" in key:
            raise ValueError("%s key %r contains a newline" % (kind, key))
    return key


_INT64 = (-(2**63), 2**63)
_UINT64 = 2**64
_INF = (float("inf"), float("-inf"))


class LineBuilder:
    """One line of InfluxDB line protocol: a measurement, tags, typed fields and a time."""

    __slots__ = ("measurement", "tags", "fields", "_time_ns")

    def __init__(self, measurement):
        self.measurement = _key("measurement", measurement)
        self.tags = {}
        self.fields = {}
        self._time_ns = None

    def tag(self, key, value):
        value = str(value)
        if not value or "\n" in value:
            raise ValueError("tag %r: a value must be non-empty, without newlines" % (key,))
        self.tags[_key("tag", key)] = value
        return self

    def int64_field(self, key, value):
        value = int(value)
        if not _INT64[0] <= value < _INT64[1]:
            raise ValueError("int64 field %r out of range: %d" % (key, value))
        self.fields[_key("field", key)] = "%di" % value
        return self

    def uint64_field(self, key, value):
        value = int(value)
        if not 0 <= value < _UINT64:
            raise ValueError("uint64 field %r out of range: %d" % (key, value))
        self.fields[_key("field", key)] = "%du" % value
        return self

    def float64_field(self, key, value):
        value = float(value)
        if value != value or value in _INF:
            raise ValueError("float64 field %r must be finite, got %r" % (key, value))
        self.fields[_key("field", key)] = repr(value)
        return self

    def string_field(self, key, value):
        value = str(value)
        if "\\" in value or '"' in value:
            value = value.replace("\\", "\\\\").replace('"', '\\"')
        self.fields[_key("field", key)] = '"' + value + '"'
        return self

    def bool_field(self, key, value):
        self.fields[_key("field", key)] = "true" if value else "false"
        return self

    def time_ns(self, t):
        self._time_ns = int(t)
        return self

    def build(self):
        fields = self.fields
        if not fields:
            raise ValueError("line for %r has no field: at least one is required" % (self.measurement,))
        parts = [_escape_measurement(self.measurement)]
        for k, v in self.tags.items():
            parts.append(",")
            parts.append(_escape_key(k))
            parts.append("=")
            parts.append(_escape_key(v))
        sep = " "
        for k, v in fields.items():
            parts.append(sep)
            parts.append(_escape_key(k))
            parts.append("=")
            parts.append(v)
            sep = ","
        if self._time_ns is not None:
            parts.append(" %d" % self._time_ns)
        return "".join(parts)


builtins.LineBuilder = LineBuilder

# -- the API object --------------------------------------------------------------------------


def _lines(line):
    """A LineBuilder (one line), a string, or anything with build() (plugins batch several lines
    this way) -> its line-protocol lines."""
    if line.__class__ is LineBuilder:
        return (line.build(),)
    text = line.build() if hasattr(line, "build") else str(line)
    return [l for l in text.split("\n") if l] if "\n" in text else (text,)


class _Cache:
    """Values shared by every worker of the engine (kept, pickled, in the Node host): per
    trigger, or global with use_global=True; `ttl` in seconds."""

    def __init__(self, trigger):
        self._trigger = trigger

    def _scope(self, use_global):
        return "" if use_global else self._trigger

    def put(self, key, value, ttl=None, use_global=False):
        pyport_host.call("cache_put", self._scope(use_global), str(key), pickle.dumps(value), ttl)

    def get(self, key, default=None, use_global=False):
        data = pyport_host.call("cache_get", self._scope(use_global), str(key))
        return default if data is None else pickle.loads(data)

    def delete(self, key, use_global=False):
        return bool(pyport_host.call("cache_delete", self._scope(use_global), str(key)))


class _Request:
    """What InfluxDB does not pass a request plugin: the method, the path, and every value of
    each query key (`query_parameters` has the first one only)."""

    def __init__(self, method, path, query):
        self.method, self.path, self.query = method, path, query


class _HostFunctions:
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: pyport_host.call("fn", name, list(args), kwargs)


class InfluxDBLocal:
    """The `influxdb3_local` a plugin receives."""

    def __init__(self, trigger, database, request=None):
        self._trigger = trigger
        self._database = database
        self._writes = {}  # database -> lines, delivered when the call returns
        self.cache = _Cache(trigger)
        self.host = _HostFunctions()
        self.request = request

    def _log(self, level, args):
        pyport_host.call("log", level, " ".join(str(a) for a in args))

    def info(self, *args):
        self._log("info", args)

    def warn(self, *args):
        self._log("warn", args)

    def error(self, *args):
        self._log("error", args)

    def write(self, line):
        lines = self._writes.get(self._database)
        if lines is None:
            lines = self._writes[self._database] = []
        if line.__class__ is LineBuilder:
            lines.append(line.build())
        else:
            lines.extend(_lines(line))

    def write_to_db(self, db_name, line):
        self._writes.setdefault(str(db_name), []).extend(_lines(line))

    # no_sync (InfluxDB: acknowledge before the WAL is flushed) is the host's business here.
    def write_sync(self, line, no_sync=False):
        pyport_host.call("write", self._database, _lines(line))

    def write_sync_to_db(self, db_name, line, no_sync=False):
        pyport_host.call("write", str(db_name), _lines(line))

    def query(self, query, args=None, database=None):
        return pyport_host.call("query", query, args or {}, database)


# -- loading plugins, with hot reload -------------------------------------------------------

_loaded = {}  # plugin path -> (signature, module)
_serial = [0]


def _signature(path):
    """Changes when any .py file of the plugin changes, appears or goes."""
    st = os.stat(path)
    if stat.S_ISREG(st.st_mode):
        return (st.st_mtime_ns, st.st_size, st.st_ino)
    sig = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                st = os.stat(os.path.join(root, name))
                sig.append((root, name, st.st_mtime_ns, st.st_size))
    return tuple(sig)


def _load(path):
    sig = _signature(path)
    hit = _loaded.get(path)
    if hit is not None and hit[0] == sig:
        return hit[1]
    _serial[0] += 1
    name = "pyport_plugin_%d" % _serial[0]
    if os.path.isdir(path):
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(path, "__init__.py"), submodule_search_locations=[path]
        )
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    if hit is not None:
        sys.modules.pop(hit[1].__name__, None)  # a call still running keeps its module object
    _loaded[path] = (sig, module)
    return module


# -- responses ---------------------------------------------------------------------------------


def _body(value):
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()


def _content_type(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "application/octet-stream"
    if isinstance(value, str):
        return "text/html; charset=utf-8"
    if isinstance(value, (dict, list)):
        return "application/json"
    return None


_SIMPLE = {str: "text/html; charset=utf-8", bytes: "application/octet-stream", dict: "application/json", list: "application/json"}


def response_of(result):
    """A request plugin's return value as {status, headers: [[k, v]], body: bytes}, the way
    InfluxDB and Flask read it: a Flask-style response, a (body[, status][, headers]) tuple,
    str (HTML), bytes, dict/list (JSON), None (204), or any other iterable of str/bytes chunks."""
    simple = _SIMPLE.get(result.__class__)
    if simple is not None:  # the common answers, without probing for a response object
        return {"status": 200, "headers": [["Content-Type", simple]], "body": _body(result)}
    status, headers = 200, []
    if hasattr(result, "__flask_response__") or (hasattr(result, "get_data") and hasattr(result, "status_code")):
        hs = getattr(result, "headers", {}) or {}
        items = hs.items() if hasattr(hs, "items") else hs
        return {"status": int(result.status_code), "headers": [[str(k), str(v)] for k, v in items], "body": bytes(result.get_data())}
    if isinstance(result, tuple):
        body, rest = result[0], result[1:]
        for part in rest:
            if isinstance(part, int):
                status = part
            elif part is not None:
                items = part.items() if hasattr(part, "items") else part
                headers = [[str(k), str(v)] for k, v in items]
        result = body
    if result is None and status == 200:
        status = 204
    elif not isinstance(result, (str, bytes, bytearray, memoryview, dict, list)) and hasattr(result, "__iter__"):
        result = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in result)
    kind = _content_type(result)
    if kind and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(["Content-Type", kind])
    return {"status": status, "headers": headers, "body": _body(result)}


# -- one invocation --------------------------------------------------------------------------

_ENTRY = {"writes": "process_writes", "schedule": "process_scheduled_call", "request": "process_request"}


def invoke(trigger, plugin, kind, payload, args, database):
    """Runs the plugin's entry point for `kind`; returns {"writes": [(db, [line, ...]), ...], "response"}."""
    module = _load(plugin)
    entry = getattr(module, _ENTRY[kind], None)
    if entry is None:
        raise AttributeError("plugin %s has no %s() for a %s trigger" % (plugin, _ENTRY[kind], kind))
    request = None
    if kind == "request":
        request = _Request(payload["method"], payload["path"], payload["query"])
    api = InfluxDBLocal(trigger, database, request)
    if kind == "writes":
        entry(api, payload, args)
        return {"writes": list(api._writes.items()), "response": None}
    if kind == "schedule":
        call_time = datetime.datetime.fromtimestamp(payload / 1000, datetime.timezone.utc)
        entry(api, call_time, args)
        return {"writes": list(api._writes.items()), "response": None}
    query = {k: v[0] for k, v in request.query.items() if v}
    result = entry(api, query, payload["headers"], payload["body"], args)
    return {"writes": list(api._writes.items()), "response": response_of(result)}
