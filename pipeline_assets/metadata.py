"""Small helpers that turn plain rows into Dagster metadata values."""

from __future__ import annotations

from typing import Any

import dagster as dg


def table(rows: list[dict[str, Any]]) -> dg.TableMetadataValue:
    """A UI table; the columns are the keys of the first row."""
    if not rows:
        return dg.MetadataValue.table([], dg.TableSchema(columns=[dg.TableColumn("empty", "string")]))
    columns = []
    for key, value in rows[0].items():
        kind = "int" if isinstance(value, int) else "float" if isinstance(value, float) else "string"
        columns.append(dg.TableColumn(key, kind))
    records = [
        dg.TableRecord({k: (v if isinstance(v, (int, float)) else str(v)) for k, v in row.items()}) for row in rows
    ]
    return dg.MetadataValue.table(records, dg.TableSchema(columns=columns))

