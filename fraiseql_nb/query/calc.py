"""A calc's ``expr`` -> an expression tree of the IR, by Python's own parser (``ast`` in
``eval`` mode) and an allow-list of node types: arithmetic, parentheses, numbers, the
names of the selection's other columns and six functions. Nothing of the text ever
reaches SQL: names resolve to columns, numbers are bound as values. Pure."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable

from fraiseql_nb.query.ir import Binary, Call, Expr, Num, Ref, Unary

__all__ = ["FUNCTIONS", "MAX_DEPTH", "CalcError", "parse_calc"]

#: The functions a calc may call, with their argument counts (min, max; None: any).
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1),
    "round": (1, 2),
    "coalesce": (1, None),
    "nullif": (2, 2),
    "least": (1, None),
    "greatest": (1, None),
}
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_UNARY = {ast.USub: "-", ast.UAdd: "+"}
_OTHER_OPERATORS = {
    ast.Pow: "**",
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
}


class CalcError(ValueError):
    """What is wrong with an expression; ``column`` is 1-based inside the text, if known."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column


def parse_calc(text: str, resolve: Callable[[str], str | None], names: list[str]) -> Expr:
    """The tree of ``text``; ``resolve`` gives the column a name means (None: no such name;
    ``names`` are the ones to suggest)."""
    if not text.strip():
        raise CalcError("the expression is empty")
    if "\x00" in text:
        raise CalcError("the expression holds a NUL character")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        if not exc.offset:  # Python's parser ran out of text
            column = len(text.rstrip()) + 1
            raise CalcError(
                f"syntax error at column {column}: the expression ends too soon", column
            ) from None
        column = exc.offset + (len(text) - len(text.lstrip()))
        raise CalcError(f"syntax error at column {column}: {exc.msg}", column) from None
    except (ValueError, RecursionError, MemoryError):  # NUL bytes, absurd nesting
        raise CalcError("the expression cannot be read") from None
    try:
        return _node(tree.body, text, resolve, names, 0)
    except RecursionError:
        raise CalcError(f"the expression nests deeper than {MAX_DEPTH} levels") from None


#: How deep an expression may nest (operations inside operations): deeper ones are
#: refused before any tree is walked that deep (SQL text, Polars columns).
MAX_DEPTH = 64


def _node(
    node: ast.AST,
    text: str,
    resolve: Callable[[str], str | None],
    names: list[str],
    depth: int,
) -> Expr:
    column = getattr(node, "col_offset", None)
    at = None
    if column is not None:  # ast counts UTF-8 bytes; a user counts characters
        source = text.strip().encode()
        at = len(source[:column].decode(errors="ignore")) + 1 + len(text) - len(text.lstrip())
    if depth > MAX_DEPTH:
        raise CalcError(f"column {at}: the expression nests deeper than {MAX_DEPTH} levels", at)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CalcError(f"column {at}: only numbers are values here, not {value!r}", at)
        if isinstance(value, int) and abs(value) >= 2**63:
            raise CalcError(f"column {at}: {value} is too large a number", at)
        if isinstance(value, float) and not math.isfinite(value):
            raise CalcError(f"column {at}: a number beyond float8's range", at)
        return Num(value=value)
    if isinstance(node, ast.Name):
        column_name = resolve(node.id)
        if column_name is None:
            known = ", ".join(names) or "none"
            raise CalcError(
                f"column {at}: {node.id!r} is not a column of this selection (it has: {known})",
                at,
            )
        return Ref(name=column_name)
    if isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
        symbol = _OTHER_OPERATORS.get(type(node.op), type(node.op).__name__)
        raise CalcError(f"column {at}: {symbol} is not taken (+ - * / are)", at)
    if isinstance(node, ast.BinOp):
        return Binary(
            op=_BINARY[type(node.op)],
            left=_node(node.left, text, resolve, names, depth + 1),
            right=_node(node.right, text, resolve, names, depth + 1),
        )
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        operand = _node(node.operand, text, resolve, names, depth + 1)
        if isinstance(operand, Num):  # -1 is a number (round(x, -1)), not an operation
            return Num(value=-operand.value if isinstance(node.op, ast.USub) else operand.value)
        return Unary(op=_UNARY[type(node.op)], operand=operand)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            allowed = ", ".join(FUNCTIONS)
            raise CalcError(f"column {at}: only these functions are taken: {allowed}", at)
        if node.keywords:
            raise CalcError(f"column {at}: {node.func.id} takes no named arguments", at)
        least, most = FUNCTIONS[node.func.id]
        count = len(node.args)
        if count < least or (most is not None and count > most):
            wanted = f"{least}" if least == most else f"{least} to {most or 'any number of'}"
            raise CalcError(f"column {at}: {node.func.id} takes {wanted} arguments", at)
        args = tuple(_node(a, text, resolve, names, depth + 1) for a in node.args)
        if node.func.id == "round" and len(args) == 2:
            digits = args[1]
            if not isinstance(digits, Num) or not isinstance(digits.value, int):
                raise CalcError(f"column {at}: round's digits are a whole number", at)
            if not -15 <= digits.value <= 15:
                raise CalcError(f"column {at}: round's digits are between -15 and 15", at)
        return Call(function=node.func.id, args=args)
    what = type(node).__name__
    raise CalcError(
        f"column {at}: {what} is not taken: + - * /, parentheses, numbers, names and"
        f" {', '.join(FUNCTIONS)}",
        at,
    )
