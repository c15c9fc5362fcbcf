"""Scheduled reporter (pyport example plugin, InfluxDB 3 compatible).

Trigger: every:<duration> or cron:<...>. Keeps the times of its last calls in the trigger's
cache (a deque survives between calls, across worker restarts of the engine) and writes a
`reporter` line with the number of calls so far and the seconds since the previous one.
"""
from collections import deque

from .format import seconds_between


def process_scheduled_call(influxdb3_local, call_time, args=None):
    calls = influxdb3_local.cache.get("calls", default=deque(maxlen=10))
    previous = calls[-1] if calls else None
    calls.append(call_time)
    count = influxdb3_local.cache.get("count", default=0) + 1
    influxdb3_local.cache.put("calls", calls)
    influxdb3_local.cache.put("count", count)
    line = LineBuilder("reporter").int64_field("calls", count)
    if previous is not None:
        line.float64_field("gap_seconds", seconds_between(previous, call_time))
    line.time_ns(int(call_time.timestamp() * 1e9))
    influxdb3_local.write(line)
    influxdb3_local.info("report", count, "at", call_time.isoformat())
