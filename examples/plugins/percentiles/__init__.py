"""Percentiles over HTTP with numpy (pyport example plugin, InfluxDB 3 compatible).

Trigger: request:<path>. GET ?x=3&x=1&x=4&p=50&p=90 answers the requested percentiles of the x
values. numpy comes from this directory's requirements.txt: pyport gives the plugin its own
virtualenv, installed when the plugin is first used and again whenever that file changes.
"""
import numpy as np


def process_request(influxdb3_local, query_parameters, request_headers, request_body, args=None):
    query = influxdb3_local.request.query
    xs = np.array([float(v) for v in query.get("x", [])] or [0.0])
    ps = [float(p) for p in query.get("p", ["50", "90", "99"])]
    values = np.percentile(xs, ps)
    influxdb3_local.info(f"percentiles of {xs.size} values with numpy {np.__version__}")
    return {
        "n": int(xs.size),
        "percentiles": {f"p{p:g}": float(v) for p, v in zip(ps, values)},
        "numpy": np.__version__,
    }
