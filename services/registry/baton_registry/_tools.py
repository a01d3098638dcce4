"""Tools: stored views of methods for LLM callers."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from baton_core import finish_before_cancel, utcnow

from ._db import Database
from ._models import Tool
from ._rows import aware
from ._tables import tools


class ToolStore:
    """SQL access to tools; tools have no events."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @finish_before_cancel
    async def put(self, tool: Tool) -> Tool:
        """Creates or replaces the tool, keeping its first create_time."""
        values = {"method_name": tool.method, "description": tool.description,
                  "parameters_schema": tool.parameters_schema,
                  "parameter_mapping": tool.parameter_mapping}
        async with self._db.write() as conn:
            found = (await conn.execute(
                select(tools.c.name).where(tools.c.name == tool.name))).first()
            if found is None:
                await conn.execute(insert(tools).values(
                    name=tool.name, create_time=utcnow(), **values))
            else:
                await conn.execute(update(tools).where(tools.c.name == tool.name).values(**values))
            return (await _select(conn, tools.c.name == tool.name))[0]

    async def get(self, name: str) -> Tool | None:
        async with self._db.read() as conn:
            found = await _select(conn, tools.c.name == name)
        return found[0] if found else None

    async def for_method(self, method: str) -> list[Tool]:
        """The tools that map onto `method`."""
        async with self._db.read() as conn:
            return await _select(conn, tools.c.method_name == method)

    @finish_before_cancel
    async def delete(self, name: str) -> bool:
        """Deletes the tool; False when there was none."""
        async with self._db.write() as conn:
            result = await conn.execute(delete(tools).where(tools.c.name == name))
        return bool(result.rowcount)

    async def find(self, *, after: str = "", limit: int | None = None) -> list[Tool]:
        where = [tools.c.name > after] if after else []
        async with self._db.read() as conn:
            return await _select(conn, *where, limit=limit)


async def _select(conn, *where, limit: int | None = None) -> list[Tool]:
    query = select(tools).where(*where).order_by(tools.c.name)
    if limit is not None:
        query = query.limit(limit)
    return [
        Tool(name=row["name"], method=row["method_name"], description=row["description"],
             parameters_schema=row["parameters_schema"],
             parameter_mapping=row["parameter_mapping"], create_time=aware(row["create_time"]))
        for row in (await conn.execute(query)).mappings()
    ]
