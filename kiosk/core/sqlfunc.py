"""Portable SQL expressions the ORM does not offer."""

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Integer


class epoch_seconds(FunctionElement):  # noqa: N801 - reads like the SQL function it is
    """Seconds since 1970 of a naive-UTC timestamp column, as an integer.

    Reading ints instead of datetimes keeps the whiteboard's busiest query cheap.
    """

    type = Integer()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element, compiler, **kw):
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS INTEGER)"
