"""llama-index ``MetadataFilters`` -> parameterised SQL over the jsonb ``metadata`` column.

Keys and values always travel as bind parameters (never formatted into the SQL text), so
a filter such as ``{"key": "x') OR true --"}`` is just an odd key that matches nothing.
Comparisons use jsonb semantics, so numbers compare as numbers and no cast can fail."""
from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Any

from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
from psycopg import sql
from psycopg.types.json import Jsonb

# Keys that are first-class columns rather than jsonb fields.
COLUMN_KEYS = {"doc_id": "doc_id", "valid_from": "valid_from", "valid_to": "valid_to"}

_CMP = {
    FilterOperator.EQ: "=", FilterOperator.NE: "<>", FilterOperator.GT: ">",
    FilterOperator.GTE: ">=", FilterOperator.LT: "<", FilterOperator.LTE: "<=",
}


class FilterTranslator:
    """Builds one WHERE fragment; ``params`` collects the named bind values it uses."""

    def __init__(self, alias: str = "c"):
        self.alias = alias
        self.params: dict[str, Any] = {}
        self._n = itertools.count()

    def _bind(self, value: Any) -> sql.Placeholder:
        name = f"f{next(self._n)}"
        self.params[name] = value
        return sql.Placeholder(name)

    def translate(self, filters: MetadataFilters | None) -> sql.Composable:
        if filters is None or not filters.filters:
            return sql.SQL("TRUE")
        parts = [self.translate(f) if isinstance(f, MetadataFilters) else self._one(f) for f in filters.filters]
        cond = filters.condition or FilterCondition.AND
        if cond == FilterCondition.NOT:
            return sql.SQL("NOT ({})").format(sql.SQL(" AND ").join(parts))
        joiner = " OR " if cond == FilterCondition.OR else " AND "
        return sql.SQL("({})").format(sql.SQL(joiner).join(parts))

    def _column(self, key: str) -> sql.Composable:
        return sql.Identifier(self.alias, COLUMN_KEYS[key])

    def _one(self, f: MetadataFilter) -> sql.Composable:
        op = f.operator
        if f.key in COLUMN_KEYS:
            return self._column_filter(f)
        field = sql.SQL("{}.metadata -> {}").format(sql.Identifier(self.alias), self._bind(f.key))
        text = sql.SQL("{}.metadata ->> {}").format(sql.Identifier(self.alias), self._bind(f.key))
        v = f.value
        if op in _CMP:
            cmp = sql.SQL(_CMP[op])
            if op == FilterOperator.NE:  # a missing key is "not equal" too
                return sql.SQL("({} IS DISTINCT FROM {})").format(field, self._bind(Jsonb(_jsonable(v))))
            return sql.SQL("({} {} {})").format(field, cmp, self._bind(Jsonb(_jsonable(v))))
        if op in (FilterOperator.IN, FilterOperator.NIN):
            values = [Jsonb(_jsonable(x)) for x in _as_list(v)]
            expr = sql.SQL("({} = ANY({}::jsonb[]))").format(field, self._bind(values))
            return expr if op == FilterOperator.IN else sql.SQL("(NOT coalesce({}, false))").format(expr)
        if op == FilterOperator.CONTAINS:  # list-valued field contains the value
            return sql.SQL("({} @> {})").format(field, self._bind(Jsonb([_jsonable(v)])))
        if op == FilterOperator.ANY:
            return sql.SQL("({} ?| {}::text[])").format(field, self._bind([str(x) for x in _as_list(v)]))
        if op == FilterOperator.ALL:
            return sql.SQL("({} ?& {}::text[])").format(field, self._bind([str(x) for x in _as_list(v)]))
        if op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
            like = sql.SQL("LIKE" if op == FilterOperator.TEXT_MATCH else "ILIKE")
            return sql.SQL("({} {} {})").format(text, like, self._bind(f"%{_escape_like(str(v))}%"))
        if op == FilterOperator.IS_EMPTY:
            return sql.SQL("(coalesce({}, 'null'::jsonb) IN ('null'::jsonb, '[]'::jsonb, '\"\"'::jsonb))").format(field)
        raise ValueError(f"unsupported filter operator {op!r} on key {f.key!r}")

    def _column_filter(self, f: MetadataFilter) -> sql.Composable:
        col = self._column(f.key)
        if f.operator in _CMP:
            return sql.SQL("({} {} {})").format(col, sql.SQL(_CMP[f.operator]), self._bind(f.value))
        if f.operator in (FilterOperator.IN, FilterOperator.NIN):
            neg = sql.SQL("NOT ") if f.operator == FilterOperator.NIN else sql.SQL("")
            return sql.SQL("({}{} = ANY({}))").format(neg, col, self._bind(list(_as_list(f.value))))
        if f.operator == FilterOperator.IS_EMPTY:
            return sql.SQL("({} IS NULL)").format(col)
        raise ValueError(f"operator {f.operator.value!r} is not supported on column {f.key!r}")


def _as_list(v: Any) -> list:
    return list(v) if isinstance(v, (list, tuple, set)) else [v]


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, (date, datetime)) else v


def _escape_like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
