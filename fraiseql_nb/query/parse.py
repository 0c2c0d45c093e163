"""GraphQL text + variables -> :class:`~fraiseql_nb.query.ir.Document`. Pure: no I/O.

graphql-core parses the text and validates it against the schema's
generated GraphQL schema (so unknown fields, operators and wrong value types
get graphql-core's messages, locations and suggestions); what GraphQL
cannot express (limits ≥ 0, having on selected aggregates, …) is checked
here. Every problem raises :class:`~fraiseql_nb.errors.QueryError` with a
line and column; nothing invalid ever reaches SQL.
"""

from __future__ import annotations

import difflib
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import graphql
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLIncludeDirective,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
    get_directive_values,
    get_variable_values,
)
from graphql.language import get_location

from fraiseql_nb.errors import QueryError
from fraiseql_nb.query import facts, request, rows
from fraiseql_nb.query.groups import MAX_EXPRESSION
from fraiseql_nb.query.ir import Document, IntrospectionQuery, Query
from fraiseql_nb.schema.graphql import graphql_schema
from fraiseql_nb.schema.model import Schema

__all__ = ["parse_query"]

_CACHE_SIZE = 256
_validated: weakref.WeakKeyDictionary[GraphQLSchema, OrderedDict[str, DocumentNode]] = (
    weakref.WeakKeyDictionary()
)
_cache_lock = threading.Lock()  # the HTTP endpoint parses from several threads


def parse_query(
    text: str,
    schema: Schema,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    *,
    max_expression: int = MAX_EXPRESSION,
) -> Document:
    """Parse, validate and translate a GraphQL document into the query IR.

    Args:
        text: the GraphQL document (one query operation; several root fields allowed).
        schema: what the database offers.
        variables: values for the operation's declared variables.
        operation_name: which operation to run when the document has several.
        max_expression: the longest calc expression taken (``[limits]``).

    Raises:
        QueryError: the query is invalid (message names the problem and where), or asks
            for a relation that exists but cannot be served (the message says why).
    """
    if not isinstance(text, str):
        raise QueryError(f"a query is GraphQL text, not {type(text).__name__}")
    _check_unicode(text, variables, operation_name)
    gql = graphql_schema(schema)
    if variables is None or isinstance(variables, dict):
        rewritten = request.rewrite(text, variables, list(schema.facts), gql)
        if rewritten is not None:  # FraiseQL's variables-only request
            text, variables = rewritten
    document = _parse_and_validate(text, schema, gql)
    operation = _operation(document, operation_name)
    if variables is not None and not isinstance(variables, dict):
        raise QueryError(f"variables must be a dict, not {type(variables).__name__}")
    try:
        coerced = get_variable_values(gql, operation.variable_definitions or (), variables or {})
    except ValueError:  # an int too long for Python to print in an error message
        raise QueryError("a variable holds a number with more than 4,300 digits") from None
    if isinstance(coerced, list):
        raise _query_error(coerced)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    ctx = Context(
        schema=schema,
        gql=gql,
        variables=coerced,
        fragments=fragments,
        max_expression=max_expression,
    )
    queries: list[Query | IntrospectionQuery] = []
    for key, nodes in ctx.collect(operation.selection_set).items():
        name = nodes[0].name.value
        if name.startswith("__"):  # __schema, __type, __typename
            queries.append(_introspect(gql, operation, document, key, nodes, variables))
            continue
        args = ctx.arguments(gql.query_type.fields[name], nodes[0])
        entity = schema.entity(name)
        if entity is not None:
            queries.append(rows.build_row_query(ctx, key, entity, name, nodes, args))
            continue
        fact = schema.fact(name)
        if fact is not None and name == fact.aggregate_query:
            queries.append(facts.build_aggregate_query(ctx, key, fact, nodes, args))
        elif fact is not None:
            queries.append(facts.build_window_query(ctx, key, fact, nodes, args))
        else:
            raise ctx.error(f"{name} is not a query of this schema", nodes[0])
    return Document(queries=tuple(queries))


class Context:
    """What the IR builders share: the schema, coerced variables, fragments, and error helpers."""

    def __init__(
        self,
        *,
        schema: Schema,
        gql: GraphQLSchema,
        variables: VariableValues,
        fragments: dict[str, FragmentDefinitionNode],
        max_expression: int = MAX_EXPRESSION,
    ) -> None:
        self.schema = schema
        self.gql = gql
        self.variables = variables
        self.fragments = fragments
        self.max_expression = max_expression

    def arguments(self, field_def: Any, node: FieldNode) -> dict[str, Any]:
        """Coerced argument values of ``node`` (variables substituted, defaults applied)."""
        try:
            return get_argument_values(field_def, node, self.variables)
        except GraphQLError as exc:  # validation already passed; kept as a safety net
            raise _query_error([exc]) from None

    def collect(self, selection_set: SelectionSetNode | None) -> OrderedDict[str, list[FieldNode]]:
        """Fields by response key (alias or name), fragments expanded, @skip/@include applied."""
        out: OrderedDict[str, list[FieldNode]] = OrderedDict()
        self._collect(selection_set, out, set())
        return out

    def _collect(
        self,
        selection_set: SelectionSetNode | None,
        out: OrderedDict[str, list[FieldNode]],
        seen_fragments: set[str],
    ) -> None:
        if selection_set is None:
            return
        for sel in selection_set.selections:
            if not self._included(sel):
                continue
            if isinstance(sel, FieldNode):
                key = sel.alias.value if sel.alias else sel.name.value
                out.setdefault(key, []).append(sel)
            elif isinstance(sel, InlineFragmentNode):
                self._collect(sel.selection_set, out, seen_fragments)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                if name in seen_fragments:
                    continue
                fragment = self.fragments[name]
                self._collect(fragment.selection_set, out, seen_fragments | {name})

    def _included(self, node: Any) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if"):
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include is not None and not include.get("if"))

    def sub_fields(self, nodes: Iterable[FieldNode]) -> OrderedDict[str, list[FieldNode]]:
        """The merged sub-selection of several nodes with the same response key."""
        out: OrderedDict[str, list[FieldNode]] = OrderedDict()
        for node in nodes:
            self._collect(node.selection_set, out, set())
        return out

    def argument_node(self, node: FieldNode, name: str) -> Node:
        """The argument's node (for error locations), or the field when not written."""
        return next((a for a in node.arguments or () if a.name.value == name), node)

    def error(
        self,
        message: str,
        node: Node | None = None,
        *,
        near: str | None = None,
        choices: Iterable[str] = (),
    ) -> QueryError:
        """A QueryError at ``node``, with a "did you mean" when ``near`` resembles a choice."""
        if near is not None:
            close = difflib.get_close_matches(near, list(choices), n=3)
            if close:
                message += f". Did you mean {' or '.join(repr(c) for c in close)}?"
        line = column = None
        if node is not None and node.loc is not None:
            loc = get_location(node.loc.source, node.loc.start)
            line, column = loc.line, loc.column
        return QueryError(message, line=line, column=column)


def _check_unicode(text: str, variables: Any, operation_name: Any) -> None:
    """Text that UTF-8 cannot carry (a lone surrogate) cannot reach PostgreSQL: say so."""
    stack: list[Any] = [text, variables, operation_name]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = value[exc.start : exc.end].encode("unicode_escape").decode()
                raise QueryError(
                    f"text must be valid Unicode: {bad} is a lone surrogate (half of a character)"
                ) from None
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)


def _introspect(
    gql: GraphQLSchema,
    operation: OperationDefinitionNode,
    document: DocumentNode,
    key: str,
    nodes: list[FieldNode],
    variables: dict[str, Any] | None,
) -> IntrospectionQuery:
    """graphql-core's answer to one introspection root field (the document is valid)."""
    alone = OperationDefinitionNode(
        operation=OperationType.QUERY,
        variable_definitions=operation.variable_definitions,
        directives=(),
        selection_set=SelectionSetNode(selections=tuple(nodes)),
    )
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    answer = graphql.execute_sync(
        gql, DocumentNode(definitions=(alone, *fragments)), variable_values=variables or {}
    )
    if answer.errors:
        raise _query_error(list(answer.errors))
    assert answer.data is not None
    return IntrospectionQuery(key=key, value=answer.data[key])


def _parse_and_validate(text: str, schema: Schema, gql: GraphQLSchema) -> DocumentNode:
    with _cache_lock:
        cache = _validated.setdefault(gql, OrderedDict())
        document = cache.get(text)
        if document is not None:
            cache.move_to_end(text)
            return document
    try:
        document = parse(text)
    except GraphQLError as exc:
        raise _query_error([exc]) from None
    _check_problem_fields(document, schema)
    errors = validate(gql, document, _rules_for(text))
    if errors:
        raise _with_hint(_in_plain_words(_query_error(errors), schema), schema)
    with _cache_lock:
        cache[text] = document
        if len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    return document


# graphql-core's rules that can only fire on variables, fragments or directives.
# A rule that finds none of what it checks reports nothing, so leaving it out
# when the text cannot contain it changes no result and saves most of the
# validation time (the variable rules alone are about half).
_VARIABLE_RULES = {
    graphql.NoUndefinedVariablesRule,
    graphql.NoUnusedVariablesRule,
    graphql.VariablesInAllowedPositionRule,
    graphql.UniqueVariableNamesRule,
    graphql.VariablesAreInputTypesRule,
}
_FRAGMENT_RULES = {
    graphql.FragmentsOnCompositeTypesRule,
    graphql.UniqueFragmentNamesRule,
    graphql.KnownFragmentNamesRule,
    graphql.NoUnusedFragmentsRule,
    graphql.PossibleFragmentSpreadsRule,
    graphql.NoFragmentCyclesRule,
}
_DIRECTIVE_RULES = {
    graphql.KnownDirectivesRule,
    graphql.UniqueDirectivesPerLocationRule,
    *(r for r in specified_rules if r.__name__.startswith(("DeferStream", "StreamDirective"))),
}


def _rules_for(text: str) -> list[Any]:
    """graphql-core's specified rules, less those the text gives nothing to check."""
    skip: set[Any] = set()
    if "$" not in text:
        skip |= _VARIABLE_RULES
    if "..." not in text and "fragment" not in text:
        skip |= _FRAGMENT_RULES
    if "@" not in text:
        skip |= _DIRECTIVE_RULES
    return [r for r in specified_rules if r not in skip]


def _check_problem_fields(document: DocumentNode, schema: Schema) -> None:
    """Say why a relation that exists cannot be queried, instead of "unknown field"."""
    if not schema.problems:
        return
    served = set(schema.root_fields())
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for sel in definition.selection_set.selections:
                if isinstance(sel, FieldNode) and sel.name.value not in served:
                    problem = schema.problem_for(sel.name.value)
                    if problem is not None:
                        loc = get_location(sel.loc.source, sel.loc.start) if sel.loc else None
                        raise QueryError(
                            problem.message,
                            line=loc.line if loc else None,
                            column=loc.column if loc else None,
                        )


_INPUT_FIELD = re.compile(
    r"Expected value of type '(?P<type>\w+?)(?P<kind>GroupBy|Having|OrderBy)Input' not to include"
    r" unknown field '(?P<field>[^']+)'(?:\. Did you mean (?P<hint>[^?]+)\?)?"
)
_KIND_WORDS = {"GroupBy": "group key", "Having": "having field", "OrderBy": "orderBy field"}


def _in_plain_words(error: QueryError, schema: Schema) -> QueryError:
    """graphql-core's wording for an unknown group key (an input type's field) in the words
    of the query: "sales has no group key 'regoin'; did you mean 'region'?"."""
    stems = {f.type_stem: f.name for f in schema.facts}
    stems |= {f"{f.type_stem}Aggregate": f.aggregate_query for f in schema.facts}
    stems |= {f"{f.type_stem}Window": f.window_query for f in schema.facts}
    reworded = []
    for message, line, column in error.errors:
        found = _INPUT_FIELD.match(message)
        if found is not None and found["type"] in stems:
            hint = f"; did you mean {found['hint']}?" if found["hint"] else ""
            message = (
                f"{stems[found['type']]} has no {_KIND_WORDS[found['kind']]}"
                f" '{found['field']}'{hint}"
            )
        reworded.append((message, line, column))
    if reworded == list(error.errors):
        return error
    return QueryError(reworded[0][0], errors=tuple(reworded))


def _with_hint(error: QueryError, schema: Schema) -> QueryError:
    """Say why a type is bare when its fields are unknown because no document was seen."""
    bare = [(f"'{e.name}", f"{e.schema}.{e.relation}") for e in schema.entities if not e.sampled]
    bare += [(f"'{f.type_stem}", f"{f.schema}.{f.relation}") for f in schema.facts]
    for type_name, where in bare:
        if type_name in str(error):
            problem = next(
                (
                    p
                    for p in schema.problems
                    if p.relation == where and " returned no " in p.message
                ),
                None,
            )
            if problem is not None:
                (first, line, column), *rest = error.errors
                amended = (f"{first} ({problem.message})", line, column)
                return QueryError(amended[0], errors=(amended, *rest))
    return error


def _operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        chosen = [o for o in operations if o.name and o.name.value == operation_name]
        if not chosen:
            names = [o.name.value for o in operations if o.name]
            raise QueryError(
                f"no operation named {operation_name!r} in the document"
                + (f" (it has {', '.join(names)})" if names else "")
            )
        operation = chosen[0]
    elif len(operations) == 1:
        operation = operations[0]
    else:
        raise QueryError(
            f"the document has {len(operations)} operations; pass operation_name to pick one"
        )
    if operation.operation != OperationType.QUERY:
        kind = operation.operation.value
        loc = get_location(operation.loc.source, operation.loc.start) if operation.loc else None
        raise QueryError(
            f"only queries are supported: this document is a {kind}",
            line=loc.line if loc else None,
            column=loc.column if loc else None,
        )
    return operation


def _query_error(errors: list[GraphQLError]) -> QueryError:
    """One QueryError carrying all of graphql-core's errors, located."""
    return QueryError(
        errors[0].message,
        errors=tuple(
            (
                e.message,
                e.locations[0].line if e.locations else None,
                e.locations[0].column if e.locations else None,
            )
            for e in errors
        ),
    )
