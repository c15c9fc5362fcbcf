"""HTTP endpoint (pyport example plugin, InfluxDB 3 compatible).

Trigger: request:<path>, served at /api/v3/engine/<path>. GET ?x=1&x=2&x=4 answers the mean and
standard deviation of the x values as JSON (with numpy when it is installed, else the standard
library); POST echoes the body back as bytes. pyport also gives the method and repeated query
keys as influxdb3_local.request (InfluxDB passes only the first value of each key).
"""
import json


def _stats(xs):
    try:
        import numpy as np
    except ImportError:
        import statistics

        return {"mean": statistics.fmean(xs), "std": statistics.pstdev(xs), "numpy": False}
    a = np.array(xs, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std()), "numpy": True}


def process_request(influxdb3_local, query_parameters, request_headers, request_body, args=None):
    request = getattr(influxdb3_local, "request", None)
    method = request.method if request is not None else "GET"
    if method == "POST":
        return bytes(request_body), 200, {"Content-Type": "application/octet-stream"}
    values = request.query.get("x", []) if request is not None else [query_parameters.get("x", "0")]
    xs = [float(v) for v in values] or [0.0]
    return {"n": len(xs), "first": query_parameters.get("x"), **_stats(xs)}
