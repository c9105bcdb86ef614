"""Querysets compiled to SQL once, then run again with new parameters.

Building and compiling a queryset is most of the ORM's cost on the hot reads: ~0.6-0.9
ms of CPU per query (filters resolved, joins set up, SQL assembled), against ~0.2 ms
to send the same SQL through the connection. A ``PreparedQuery`` keeps the queryset as
the single definition of the query (written with the ORM, next to the rules it
follows) and compiles it once per database and *shape* (which arguments are None):

* ``build(**arguments)`` returns the queryset. It is compiled twice with two sets of
  *probe* arguments (distinct, improbable values of each argument's type); a
  parameter that follows a probe is that argument (as the backend adapts it: SQLite
  sends dates and datetimes as text), a parameter equal in both is a constant.
  Anything else (a parameter *derived* from an argument, ``start - timedelta(...)``)
  cannot be prepared: the shape then runs through the ORM every time, as before.
* A run sends the SQL with the arguments in place and converts the rows with the
  compiler's own converters: the same values, dicts, tuples or model instances (with
  annotations) the queryset would have produced. ``select_related`` is not supported
  (it is refused at compile time, and runs through the ORM).

``page(offset, limit, **arguments)`` runs a page of the same query: the unsliced SQL
with ``LIMIT n OFFSET m`` appended, so paging through a list compiles nothing.

Booleans are not probed (two values only): pass them as part of the shape.
Runs go through ``connection.cursor()``: transactions, query logging and
``CaptureQueriesContext`` see them like any query.
"""

import logging
from datetime import UTC, date, datetime, timedelta

from django.db import connections, router
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesIterable,
    ValuesListIterable,
)

logger = logging.getLogger(__name__)

_UNPREPARABLE = object()
_INT32 = 2**31


def _probe(value, index: int, variant: int):
    """An improbable value of ``value``'s type, different per argument and variant."""
    if isinstance(value, bool):
        raise TypeError("booleans cannot be probed; make them part of the shape")
    if isinstance(value, int):
        return 900_000_001 + 1_000 * index + 17 * variant
    if isinstance(value, str):
        return f"\x1fprobe-{index}-{variant}\x1f"
    if isinstance(value, datetime):
        base = datetime(2301, 1, 1, 1, 1, 1, 1 + index, tzinfo=UTC)
        return base + timedelta(days=37 * variant, minutes=index)
    if isinstance(value, date):
        return date(2301, 1, 1) + timedelta(days=37 * variant + index)
    raise TypeError(f"cannot probe a {type(value).__name__}")


def _forms(value, connection):
    """How the backend may send ``value`` as a parameter: (form, adapter) pairs."""
    forms = [(value, None)]
    ops = connection.ops
    if isinstance(value, datetime):
        forms.append((ops.adapt_datetimefield_value(value), ops.adapt_datetimefield_value))
    elif isinstance(value, date):
        forms.append((ops.adapt_datefield_value(value), ops.adapt_datefield_value))
    return forms


class _Compiled:
    __slots__ = ("compiler", "converters", "db", "shape_rows", "slots", "sql")

    def run(self, connection, arguments, page=None):
        params = [
            value
            if name is None
            else (arguments[name] if adapt is None else adapt(arguments[name]))
            for name, adapt, value in self.slots
        ]
        sql = self.sql
        if page is not None:
            # Literal bounds, as Django writes them: with LIMIT as a parameter PostgreSQL
            # cannot cost a generic plan (it guesses a tenth of the rows) and so plans the
            # prepared statement again on every run, 0.5-1 ms for the appointment page.
            offset, limit = page
            sql = f"{sql} LIMIT {int(limit)} OFFSET {int(offset)}"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if self.converters:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        return self.shape_rows(rows)


class PreparedQuery:
    """``PreparedQuery(build)(**arguments)``: the rows of ``build(**arguments)``, as a list."""

    def __init__(self, build, *, model=None):
        self.build = build
        self.model = model  # for the database router; defaults to the queryset's
        self._compiled: dict[tuple, _Compiled | object] = {}

    def __call__(self, **arguments) -> list:
        return self._run(arguments, None)

    def page(self, offset: int, limit: int, **arguments) -> list:
        """``build(**arguments)[offset : offset + limit]``, the bounds sent as parameters.

        The unsliced SQL is compiled once; each page appends its bounds to it.
        """
        return self._run(arguments, (offset, limit))

    def _run(self, arguments: dict, page: tuple[int, int] | None) -> list:
        if any(type(v) is int and not -_INT32 <= v < _INT32 for v in arguments.values()):
            # Out of an integer column's range: the ORM knows what that means per field
            # (no rows for an exact lookup, an error elsewhere); leave it to it.
            return self._through_orm(arguments, page)
        shape = tuple(
            sorted(
                (name, value if value is None or isinstance(value, bool) else type(value))
                for name, value in arguments.items()
            )
        )
        db = router.db_for_read(self.model) if self.model is not None else "default"
        connection = connections[db]
        key = (connection.alias, connection.vendor, shape, page is not None)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(
                connection, arguments, paged=page is not None
            )
        if compiled is _UNPREPARABLE:
            return self._through_orm(arguments, page)
        return compiled.run(connection, arguments, page)

    def _through_orm(self, arguments: dict, page: tuple[int, int] | None) -> list:
        queryset = self.build(**arguments)
        if page is not None:
            offset, limit = page
            queryset = queryset[offset : offset + limit]
        return list(queryset)

    def _compile(self, connection, arguments, *, paged):
        variable = [
            name
            for name, value in arguments.items()
            if value is not None and not isinstance(value, bool)
        ]
        probes = []
        for variant in (0, 1):
            probes.append(
                {
                    **arguments,
                    **{
                        name: _probe(arguments[name], index, variant)
                        for index, name in enumerate(variable)
                    },
                }
            )
        compiled = []
        try:
            for probe in probes:
                queryset = self.build(**probe).using(connection.alias)
                compiler = queryset.query.get_compiler(using=connection.alias)
                sql, params = compiler.as_sql()
                compiled.append((queryset, compiler, sql, tuple(params)))
        except (TypeError, ValueError) as exc:  # e.g. a probe that its field refuses
            return self._refuse(f"probing failed ({exc})")
        (queryset, compiler, sql, params), (_, _, sql_b, params_b) = compiled
        if paged and (queryset.query.is_sliced or queryset.query.select_for_update):
            return self._refuse("a page of it needs LIMIT/OFFSET of its own")
        if sql != sql_b or len(params) != len(params_b):
            return self._refuse("its SQL depends on the arguments' values")
        slots = []
        for value, value_b in zip(params, params_b, strict=True):
            slot = self._slot(connection, variable, probes, value, value_b)
            if slot is None:
                return self._refuse(f"a parameter ({value!r}) is derived from an argument")
            slots.append(slot)
        shape_rows = self._shape_rows(queryset, compiler, connection)
        if shape_rows is None:
            return self._refuse("it loads related models (select_related)")
        result = _Compiled()
        result.sql = sql  # a page's LIMIT and OFFSET are added by _Compiled.run
        result.slots = tuple(slots)
        result.compiler = compiler
        fields = [column[0] for column in compiler.select[: compiler.col_count]]
        result.converters = compiler.get_converters(fields)
        result.shape_rows = shape_rows
        result.db = connection.alias
        return result

    @staticmethod
    def _slot(connection, variable, probes, value, value_b):
        for name in variable:
            for (form, adapt), (form_b, _) in zip(
                _forms(probes[0][name], connection),
                _forms(probes[1][name], connection),
                strict=True,
            ):
                if value == form and value_b == form_b and type(value) is type(form):
                    return (name, adapt, None)
        if value == value_b and type(value) is type(value_b):
            return (None, None, value)
        return None

    @staticmethod
    def _shape_rows(queryset, compiler, connection):
        iterable = queryset._iterable_class
        query = queryset.query
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        if iterable is ValuesIterable:
            return lambda rows: [dict(zip(names, row, strict=True)) for row in rows]
        if iterable is ValuesListIterable:
            if tuple(queryset._fields or ()) != tuple(names):  # Django would reorder
                return None
            return lambda rows: [tuple(row) for row in rows]
        if iterable is FlatValuesListIterable:
            return lambda rows: [row[0] for row in rows]
        if iterable is ModelIterable:
            info = compiler.klass_info
            if info.get("related_klass_infos"):
                return None
            model = info["model"]
            start, end = info["select_fields"][0], info["select_fields"][-1] + 1
            init_list = [column[0].target.attname for column in compiler.select[start:end]]
            annotations = tuple(compiler.annotation_col_map.items())
            db = connection.alias

            def models(rows):
                objects = []
                for row in rows:
                    obj = model.from_db(db, init_list, row[start:end])
                    for attr, index in annotations:
                        setattr(obj, attr, row[index])
                    objects.append(obj)
                return objects

            return models
        return None

    def _refuse(self, why: str):
        logger.warning("Query of %s is run through the ORM: %s", self.build, why)
        return _UNPREPARABLE


class PreparedRows:
    """A prepared query's rows as the paginator takes a queryset: ``count()`` and a slice.

    ``count`` is a prepared query of one value (a flat ``values_list``), no row being 0.
    """

    def __init__(self, rows: PreparedQuery, count: PreparedQuery, **arguments):
        self._rows = rows
        self._count = count
        self._arguments = arguments

    def count(self) -> int:
        found = self._count(**self._arguments)
        return found[0] if found else 0

    def __getitem__(self, bounds: slice) -> list:
        if not isinstance(bounds, slice) or bounds.step is not None:
            raise TypeError("PreparedRows take a slice [start:stop]")
        return self._rows.page(bounds.start, bounds.stop - bounds.start, **self._arguments)
