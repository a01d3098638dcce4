"""The writer's statements compiled once, for the paths that bypass SQLAlchemy's
Connection (`_sqlite_writer`, `_pg_writer`).

SQLAlchemy compiles each statement for the driver's dialect once per row shape
(the keys its rows have): SQL text, parameter order, and the column types'
bind processors, so values are stored exactly as SQLAlchemy stores them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler


class Compiled:
    """One statement for one dialect: its SQL, and rows as values in parameter order."""

    __slots__ = ("_converters", "_values", "sql", "width")

    def __init__(self, statement: Executable, keys: Sequence[str] | None,
                 dialect: Dialect) -> None:
        assert isinstance(statement, ClauseElement)  # an insert, update or select
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        names = tuple(compiled.positiontup or ())
        self.width = len(names)
        # A row's values in parameter order, then only those that need converting
        # (JSON, datetimes: the column types' bind processors) converted in place:
        # ~10% less Python per row than a generator over every column.
        self._values = _getter(names)
        self._converters = tuple(
            (i, process) for i, name in enumerate(names)
            if (process := compiled.binds[name].type.dialect_impl(dialect)
                .bind_processor(dialect)))

    def rows(self, params: Sequence[dict[str, Any]]) -> list[list]:
        values, converters, out = self._values, self._converters, []
        for row in params:
            row_values = list(values(row))
            for i, convert in converters:
                row_values[i] = convert(row_values[i])
            out.append(row_values)
        return out


C = TypeVar("C", bound=Compiled)


class CompiledStatements(Generic[C]):
    """Each statement compiled once per row shape, by `make(statement, keys)`."""

    def __init__(self, make: Callable[[Executable, list[str]], C]) -> None:
        self._make = make
        # The writer's statements are module constants, so this stays small.
        self._by_shape: dict[tuple, C] = {}

    def values(self, statement: Executable, params: dict[str, Any] | list[dict[str, Any]]
               ) -> tuple[C, list[list]]:
        """The compiled statement for `params` (one row or many), and their values."""
        rows = params if isinstance(params, list) else [params]
        keys = tuple(rows[0])
        compiled = self._by_shape.get((statement, keys))
        if compiled is None:
            compiled = self._by_shape[(statement, keys)] = self._make(statement, list(keys))
        return compiled, compiled.rows(rows)


def _getter(names: Sequence[str]) -> Callable[[dict[str, Any]], Sequence[Any]]:
    """A function giving a row's values for `names`, in order, as a sequence."""
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return operator.itemgetter(*names) if names else (lambda row: ())
