"""After the groups, in SQL: calcs and window functions over the grouped rows (a subquery
per level of :attr:`AggregateQuery.post`), QUALIFY, and limitPerGroup — one statement.
Pure.

Conventions shared with the Polars side (:mod:`fraiseql_nb.compute.groups`): a calc
computes in float8 (an integer count divides as a number, not as integers); ``x / y`` is
``x / nullif(y, 0)``; ``round(x, n)`` rounds the value's decimal (PostgreSQL's float8 to
numeric keeps 15 significant digits) half away from zero; windows that depend on the
order of rows among peers break ties on the group keys."""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from fraiseql_nb.language.vocabulary import ROW_ORDER_FUNCTIONS
from fraiseql_nb.query.ir import (
    AggregateQuery,
    Binary,
    Calc,
    Call,
    Expr,
    GroupWindow,
    Num,
    OrderItem,
    Ref,
    Unary,
)
from fraiseql_nb.sql.params import Params
from fraiseql_nb.sql.windows import frame, framed, window_call

__all__ = ["RANK", "after_groups", "calc_sql"]

#: The column of a row's place in its partition (limitPerGroup).
RANK = "fq:rank"

OrderBy = Callable[[list[tuple[sql.Composable, str, OrderItem | None]]], sql.Composable]


def after_groups(
    grouped: sql.Composable,
    query: AggregateQuery,
    params: Params,
    pg_type: Callable[[str], str],
    order_by: OrderBy,
    where: Callable[..., sql.Composable],
) -> sql.Composable:
    """``grouped`` (the groups, having applied) with every post column, QUALIFY and
    limitPerGroup: a statement whose columns are the groups' and the posts'."""
    keys = [k.name for k in query.group_keys]
    stmt: sql.Composable = grouped
    for level in query.post:
        exprs = [
            sql.SQL("{} AS {}").format(
                _post_sql(p, keys, params, pg_type, order_by), sql.Identifier(p.name)
            )
            for p in level
        ]
        stmt = sql.SQL("SELECT __fq_l.*, {} FROM ({}) AS __fq_l").format(
            sql.SQL(", ").join(exprs), stmt
        )
    if query.qualify is not None:
        stmt = sql.SQL("SELECT * FROM ({}) AS __fq_f WHERE {}").format(stmt, where(query.qualify))
    group = query.per_group
    if group is not None:
        over = _over(group.partition_by, group.order, keys, pg_type, order_by, ties=True)
        stmt = sql.SQL(
            "SELECT * FROM (SELECT __fq_r.*, row_number() OVER ({}) AS {} FROM ({}) AS __fq_r)"
            " AS __fq_t WHERE {} <= {}"
        ).format(
            over,
            sql.Identifier(RANK),
            stmt,
            sql.Identifier(RANK),
            params.add(group.limit, "bigint"),
        )
    return stmt


def _over(
    partition: tuple[str, ...],
    order: tuple[OrderItem, ...],
    keys: list[str],
    pg_type: Callable[[str], str],
    order_by: OrderBy,
    *,
    ties: bool,
    rows: sql.Composable | None = None,
) -> sql.Composable:
    parts: list[sql.Composable] = []
    if partition:
        parts.append(
            sql.SQL("PARTITION BY {}").format(
                sql.SQL(", ").join(sql.Identifier(p) for p in partition)
            )
        )
    items: list[tuple[sql.Composable, str, OrderItem | None]] = [
        (sql.Identifier(o.path[0]), pg_type(o.path[0]), o) for o in order
    ]
    if order and ties:
        items += [(sql.Identifier(k), pg_type(k), None) for k in keys]
    if items:
        parts.append(sql.SQL("ORDER BY {}").format(order_by(items)))
    if rows is not None:
        parts.append(rows)
    return sql.SQL(" ").join(parts)


def _post_sql(
    post: Calc | GroupWindow,
    keys: list[str],
    params: Params,
    pg_type: Callable[[str], str],
    order_by: OrderBy,
) -> sql.Composable:
    if isinstance(post, Calc):
        return sql.SQL("({})::float8").format(calc_sql(post.expr, params))
    fn = post.function
    value = sql.Identifier(post.field or "")  # lag, first_value…: the field's own type
    if fn == "share":
        value = sql.SQL("({})::float8").format(value)
        over = _over(post.partition_by, (), keys, pg_type, order_by, ties=False)
        return sql.SQL("({v} / nullif(sum({v}) OVER ({o}), 0))::float8").format(v=value, o=over)
    ties = fn in ROW_ORDER_FUNCTIONS
    rows = frame(post) if framed(post) and post.order else None
    over = _over(post.partition_by, post.order, keys, pg_type, order_by, ties=ties, rows=rows)
    default = None
    if post.default is not None:
        default = params.add(post.default, pg_type(post.field or ""))
    return window_call(
        post,
        sql.SQL("OVER ({})").format(over),
        value=value,
        running=value if post.field else None,
        default=default,
    )


def calc_sql(expr: Expr, params: Params) -> sql.Composable:
    """A calc's expression in float8 arithmetic; numbers bound, names as columns."""
    if isinstance(expr, Num):
        return params.add(float(expr.value), "float8")
    if isinstance(expr, Ref):
        return sql.SQL("({})::float8").format(sql.Identifier(expr.name))
    if isinstance(expr, Unary):
        return sql.SQL("({}{})").format(sql.SQL(expr.op), calc_sql(expr.operand, params))
    if isinstance(expr, Binary):
        left, right = calc_sql(expr.left, params), calc_sql(expr.right, params)
        if expr.op == "/":
            return sql.SQL("({} / nullif({}, 0))").format(left, right)
        return sql.SQL("({} {} {})").format(left, sql.SQL(expr.op), right)
    assert isinstance(expr, Call)
    if expr.function == "round":
        digits = expr.args[1].value if len(expr.args) > 1 else 0  # type: ignore[union-attr]
        return sql.SQL("(round(({})::numeric, {}))::float8").format(
            calc_sql(expr.args[0], params), sql.Literal(int(digits))
        )
    args = sql.SQL(", ").join(calc_sql(a, params) for a in expr.args)
    return sql.SQL("{}({})").format(sql.SQL(expr.function), args)
