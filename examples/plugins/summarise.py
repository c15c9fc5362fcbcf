"""Table-write summariser (pyport example plugin, InfluxDB 3 compatible).

Trigger: table:<name> or all_tables. For each table batch it writes one line to the
`write_summary` table: the row count and, when rows have a numeric `value` field, their sum,
min and max. Arguments: `field` (default "value") names the field to summarise.
"""


def process_writes(influxdb3_local, table_batches, args=None):
    field = (args or {}).get("field", "value")
    for batch in table_batches:
        rows = batch["rows"]
        values = [r[field] for r in rows if isinstance(r.get(field), (int, float))]
        line = LineBuilder("write_summary").tag("table", batch["table_name"]).int64_field("rows", len(rows))
        if values:
            line.float64_field("sum", float(sum(values))).float64_field("min", float(min(values))).float64_field(
                "max", float(max(values))
            )
        influxdb3_local.write(line)
    influxdb3_local.info("summarised", len(table_batches), "table batch(es)")
