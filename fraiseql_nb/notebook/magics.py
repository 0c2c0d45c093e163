"""``%fraiseql`` and ``%%fraiseql``: connect, query, inspect, explore.

One magic with subcommands (``connect schema metrics health refresh
explore``) and a query form: the cell body (or the rest of the line) is a
GraphQL document, run through :meth:`Session.execute`; the cell's value is
the :class:`~fraiseql_nb.Result`. Options are traitlets of the ``FraiseQL``
class, set with ``%config FraiseQL.<name> = value``.

Errors stay short: a bad query or a database failure fails the cell with
the message and, for a query, the line and column in the cell with a caret
under it — not a traceback through this module.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shlex
import traceback
from collections.abc import Iterator
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Int, TraitError, observe, validate

from fraiseql_nb.config import regression_mode
from fraiseql_nb.connecting import connect
from fraiseql_nb.errors import FraiseQLError, QueryError
from fraiseql_nb.local import demo, embedded
from fraiseql_nb.notebook.cell import (
    SHORT,
    Prepared,
    limited,
    located_in_cell,
    prepare,
    without_comment,
)
from fraiseql_nb.notebook.display import OPTIONS, widgets_active
from fraiseql_nb.notebook.history import scrub_history
from fraiseql_nb.notebook.progressbar import ProgressView
from fraiseql_nb.notebook.reports import HealthView, QueryLogView
from fraiseql_nb.ops import progress
from fraiseql_nb.pg.conninfo import secrets_of
from fraiseql_nb.schema import Schema, to_sdl
from fraiseql_nb.session import Session, backends

__all__ = ["FraiseQL", "short_error"]

_USAGE = """\
%fraiseql connect [DSN | $variable | --demo] [--config PATH | $variable]
%%fraiseql [-o VAR] [--backend {planes}] [--explain] [--no-cache]
           [--limit N] [--variables VAR]
<GraphQL query>
%fraiseql [options] { … }          the query on one line
%fraiseql schema [--sdl] | metrics | health | refresh [TABLE] | explore TABLE
%fraiseql prefetch [TABLE] [--wait]  load fact tables into the arrow plane (in the background)
%fraiseql session                  the fraiseql_nb.Session, for the Python API
%config FraiseQL.displaylimit / autolimit / widgets / gridlimit / progress"""


def usage() -> str:
    """The magics' usage, ``--backend`` listing the planes registered now."""
    return _USAGE.replace("{planes}", "|".join(backends()))


SUBCOMMANDS = (
    "connect",
    "session",
    "schema",
    "metrics",
    "health",
    "refresh",
    "prefetch",
    "explore",
)
_QUERY_START = re.compile(r"(?:^|\s)(\{|query\b)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the kernel
        raise UsageError(f"{message}\n{usage()}")


def _query_options() -> _Parser:
    p = _Parser(prog="%%fraiseql", add_help=False)
    p.add_argument("-o", "--out", metavar="VAR")
    p.add_argument("--backend", choices=backends(), default="auto")
    p.add_argument("--explain", action="store_true")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--limit", type=int)
    p.add_argument("--variables", metavar="VAR")
    return p


def _connect_options() -> _Parser:
    p = _Parser(prog="%fraiseql connect", add_help=False)
    p.add_argument("dsn", nargs="?")
    p.add_argument("--demo", action="store_true")
    p.add_argument("--config")
    return p


@magics_class
class FraiseQL(Magics):
    """The fraiseql magics and their options (``%config FraiseQL``)."""

    displaylimit = Int(20, help="Rows of a result shown (0 shows all).").tag(config=True)
    autolimit = Int(0, help="A limit added to row and window queries that set none (0: off).").tag(
        config=True
    )
    widgets = Bool(
        True, help="Interactive views in Jupyter: the sortable grid, progress widgets."
    ).tag(config=True)
    gridlimit = Int(
        1_000, help="Rows the interactive grid holds, stored with the result (0: all)."
    ).tag(config=True)
    progress = Bool(True, help="Show progress of loads longer than a second.").tag(config=True)
    regression = Bool(
        regression_mode(),
        help="Outputs that come out the same run after run (regression notebooks): no"
        " durations, bytes, cache hits or progress; under auto, loads are waited for."
        " Default: $FRAISEQL_REGRESSION.",
    ).tag(config=True)
    float_digits = Int(12, help="Significant digits of floats shown in regression mode.").tag(
        config=True
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self.session: Session | None = None
        for name in ("displaylimit", "widgets", "gridlimit", "regression", "float_digits"):
            setattr(OPTIONS, name, getattr(self, name))

    @validate("displaylimit", "autolimit", "gridlimit")
    def _not_negative(self, proposal: Any) -> int:
        if proposal["value"] < 0:
            raise TraitError(f"FraiseQL.{proposal['trait'].name} must be 0 or more")
        return int(proposal["value"])

    @validate("float_digits")
    def _digits(self, proposal: Any) -> int:
        if not 1 <= proposal["value"] <= 17:
            raise TraitError("FraiseQL.float_digits must be between 1 and 17")
        return int(proposal["value"])

    @observe("displaylimit", "widgets", "gridlimit", "regression", "float_digits")
    def _sync(self, change: Any) -> None:
        setattr(OPTIONS, change["name"], change["new"])
        if change["name"] == "regression" and self.session is not None:
            self.session.settle_loads = bool(change["new"])

    # ------------------------------------------------------------ entry

    @no_var_expand  # "$name" is a GraphQL variable, not IPython's expansion
    @line_cell_magic
    def fraiseql(self, line: str, cell: str | None = None) -> Any:
        """Run a GraphQL query, or a subcommand; ``%fraiseql?`` lists them."""
        words = line.split(None, 1)
        command = words[0] if words else ""
        rest = words[1] if len(words) > 1 else ""
        if command in SUBCOMMANDS:
            if cell is not None:
                raise UsageError(f"%%fraiseql {command} takes no cell body\n{usage()}")
            return getattr(self, f"_{command}")(without_comment(rest))
        if cell is not None:
            return self._query(without_comment(line), cell, line_offset=1, prefix="")
        found = _QUERY_START.search(line)
        if not found:
            raise UsageError(f"nothing to run: give a query or a subcommand\n{usage()}")
        # The query's own text keeps its "#": GraphQL reads its comments itself.
        start = found.start(1)
        # A line query sits on the cell's first line, after "%fraiseql " and its options.
        return self._query(
            line[:start], line[start:], line_offset=0, prefix="%fraiseql " + line[:start]
        )

    # ------------------------------------------------------------ queries

    def _query(self, options: str, text: str, *, line_offset: int, prefix: str) -> Any:
        opts = _query_options().parse_args(shlex.split(options))
        session = self._require_session()
        if opts.limit is not None and opts.limit < 0:
            raise UsageError("--limit must be 0 or more")
        limit = opts.limit if opts.limit is not None else (self.autolimit or None)
        variables = self._variables(opts.variables)
        try:
            prepared = prepare(text, session.schema, self.shell.user_ns, variables, limit=limit)
        except QueryError as exc:
            raise located_in_cell(exc, text, Prepared(text, {}), line_offset, prefix) from None
        try:
            if opts.explain:
                return session.explain(prepared.text, prepared.variables, opts.backend)
            result = self._execute(session, prepared, opts)
        except QueryError as exc:
            raise located_in_cell(exc, text, prepared, line_offset, prefix) from None
        result = limited(result, prepared.limited)
        if opts.out:
            if not opts.out.isidentifier():
                raise UsageError(f"-o needs a Python name, got {opts.out!r}")
            self.shell.user_ns[opts.out] = result
        return result

    def _variables(self, name: str | None) -> dict[str, Any] | None:
        """The operation's variables, a dict of the notebook's (``--variables VAR``): a
        FraiseQL request (``{ sales_aggregate }``) is all variables."""
        if name is None:
            return None
        if name not in self.shell.user_ns:
            raise UsageError(f"--variables {name}: no such variable in the notebook")
        value = self.shell.user_ns[name]
        if not isinstance(value, dict):
            raise UsageError(f"--variables {name}: a dict, not {type(value).__name__}")
        return value

    def _execute(self, session: Session, prepared: Prepared, opts: Any) -> Any:
        with self._progress("fraiseql"):
            return session.execute(
                prepared.text,
                prepared.variables,
                backend=opts.backend,
                cache=not opts.no_cache,
            )

    @contextlib.contextmanager
    def _progress(self, label: str) -> Iterator[None]:
        """Show the progress of loads and fetches inside the block (after about a second)."""
        # Regression mode: whether a load takes over a second must not change the outputs.
        shown = self.progress and not self.regression
        view = ProgressView(label, widget=widgets_active()) if shown else None
        outcome = "interrupted"
        try:
            with progress.listening(view) if view else contextlib.nullcontext():
                yield
            outcome = "done"
        except FraiseQLError:
            outcome = "failed"
            raise
        finally:
            if view is not None:
                view.close(outcome)

    # ------------------------------------------------------------ subcommands

    def _connect(self, rest: str) -> None:
        try:
            tokens = shlex.split(rest)
        except ValueError as exc:  # unbalanced quotes
            scrub_history(self.shell, (), rest)
            raise UsageError(f"connect: {exc}") from None
        # Whatever the cell says, a password typed in it leaves the history now.
        scrub_history(self.shell, tuple(s for t in tokens for s in secrets_of(t)), rest)
        opts = _connect_options().parse_args(tokens)
        dsn = self._value_of(opts.dsn)
        config = self._value_of(opts.config)
        if opts.demo:
            if dsn:
                raise UsageError("connect: give a DSN or --demo, not both")
            dsn = _demo_dsn()
        session = connect(dsn, config=config)
        session.settle_loads = self.regression
        if self.session is not None:
            self.session.close()
        self.session = session
        s = session.schema
        entities = ", ".join(e.list_query for e in s.entities) or "none"
        facts = ", ".join(f.name for f in s.facts) or "none"
        print(
            f"connected to {session.dsn}\n"
            f"{_count(len(s.entities), 'entity', 'entities')} ({entities});"
            f" {_count(len(s.facts), 'fact table', 'fact tables')} ({facts})"
        )

    def _value_of(self, arg: str | None) -> str | None:
        """``$name`` reads a notebook variable (keeps a password out of the cell's text)."""
        if not arg or not arg.startswith("$"):
            return arg
        name = arg[1:]
        if name not in self.shell.user_ns:
            raise UsageError(f"connect: ${name} is not defined in the notebook")
        return str(self.shell.user_ns[name])

    def _session(self, rest: str) -> Session:
        return self._require_session()

    def _schema(self, rest: str) -> Schema | None:
        option = rest.strip()
        if option not in ("", "--sdl"):
            raise UsageError(f"schema takes only --sdl, got {option!r}\n{usage()}")
        schema = self._require_session().schema
        if option == "--sdl":
            print(to_sdl(schema))  # the GraphQL SDL, for codegen tools and GraphiQL users
            return None
        return schema

    def _metrics(self, rest: str) -> Any:
        # The SQL of each query is in its result; here it would only crowd the table.
        return QueryLogView(self._require_session().query_log.drop("sql"))

    def _health(self, rest: str) -> HealthView:
        return HealthView(self._require_session().health())

    def _refresh(self, rest: str) -> None:
        table = rest.strip() or None
        dropped = self._require_session().refresh(table)
        what = f"of {table}" if table else "in all"
        print(f"dropped {dropped} cached load{'' if dropped == 1 else 's'} {what}")

    def _prefetch(self, rest: str) -> None:
        words = rest.split()
        wait = "--wait" in words or self.regression  # "loading 40%" depends on timing
        tables = [w for w in words if w != "--wait"]
        if len(tables) > 1 or any(t.startswith("-") for t in tables):
            raise UsageError("prefetch takes at most one fact table and --wait")
        session = self._require_session()
        with self._progress("prefetch"):
            states = session.prefetch(tables[0] if tables else None, wait=wait)
        for relation, state in states.items():
            print(f"{relation}: {state}")

    def _explore(self, rest: str) -> Any:
        from fraiseql_nb.notebook.explorer import Explorer

        table = rest.strip()
        if not table:
            raise UsageError("explore needs a fact table, e.g. %fraiseql explore sales")
        return Explorer(self._require_session(), table)

    # ------------------------------------------------------------ helpers

    def _require_session(self) -> Session:
        if self.session is None or self.session.closed:
            raise UsageError("not connected: run %fraiseql connect --demo (or connect DSN) first")
        return self.session


def _demo_dsn() -> str:
    """The embedded server's small demo database (started and loaded when needed)."""
    small = demo.SCALES[demo.DEFAULT_SCALE]
    server = embedded.start()
    name = demo.database_for(small)
    demo.ensure_database(server.dsn(), name)
    dsn = server.dsn(name)
    demo.load(dsn, small, if_missing=True)
    return dsn


def short_error(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None
) -> Any:
    """IPython's handler for FraiseQLError: the short message for a magic's error,
    the usual traceback for one raised by the user's own code."""
    stb = getattr(value, SHORT, None)
    if stb is None and any(
        frame.f_code is FraiseQL.fraiseql.__code__ for frame, _ in traceback.walk_tb(tb)
    ):
        stb = [f"{etype.__name__}: {value}"]
    if stb is None:
        stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
    shell._showtraceback(etype, value, stb)
    return stb


def _count(n: int, one: str, many: str) -> str:
    """``1 fact table``, ``2 fact tables``."""
    return f"{n:,} {one if n == 1 else many}"
