"""A cassette's ``http:`` list (the REST side) read from YAML nodes and written back.

Each entry is one request and its answer::

    http:
      - request: {method: POST, path: /v1/realtime/client_secrets, body: {session: {...}}}
        response:
          status: 200
          headers: {content-type: application/json}
          body: {value: ek_REDACTED, expires_at: 1758191700, session: {...}}

A body is JSON (a mapping or a list) or text (a string); a missing ``body`` is an
empty one. Kept apart from :mod:`.yaml_reader` and :mod:`.yaml_dumper`, which call
these two functions, so the timeline's reading stays in one place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..cassette import HttpBody, HttpExchange
from .yaml_nodes import STR, TAG, NodeReader, describe

__all__ = ["exchanges_data", "read_exchanges"]

_METHOD = re.compile(r"[A-Z]+")


def read_exchanges(
    reader: NodeReader, node: Node, json: Callable[[Node], Any]
) -> tuple[HttpExchange, ...]:
    """The exchanges of an ``http:`` list, each error at its line.

    Args:
        reader: reads the mappings and scalars, failing with their position.
        node: the ``http`` value.
        json: reads a JSON body (the cassette reader's, which resolves sidecars).
    """
    return tuple(_exchange(reader, item, json) for item in reader.sequence(node, "`http`"))


def _exchange(reader: NodeReader, node: Node, json: Callable[[Node], Any]) -> HttpExchange:
    entries = reader.mapping(
        node, "an HTTP exchange", required=("request", "response"), allowed=("request", "response")
    )
    request = reader.mapping(
        entries["request"],
        "an HTTP `request`",
        required=("method", "path"),
        allowed=("method", "path", "body"),
    )
    method = reader.string(request["method"], "an HTTP method")
    if not _METHOD.fullmatch(method):
        reader.fail(
            request["method"], f"expected an HTTP method in capitals (POST), got {method!r}"
        )
    path = reader.string(request["path"], "a request path")
    if not path.startswith("/"):
        reader.fail(request["path"], f"expected a request path starting with '/', got {path!r}")
    response = reader.mapping(
        entries["response"],
        "an HTTP `response`",
        required=("status",),
        allowed=("status", "headers", "body"),
    )
    status = reader.scalar(response["status"], "an HTTP status (an integer)", int)
    if not 200 <= status <= 599:
        reader.fail(response["status"], f"expected an HTTP status from 200 to 599, got {status}")
    return HttpExchange(
        method=method,
        path=path,
        status=status,
        request_body=_body(reader, request, json),
        response_body=_body(reader, response, json),
        response_headers=reader.pairs(response["headers"], "`headers`")
        if "headers" in response
        else (),
        line=node.start_mark.line + 1,
    )


def _body(reader: NodeReader, entries: dict[str, Node], json: Callable[[Node], Any]) -> HttpBody:
    node = entries.get("body")
    if node is None:
        return None
    if isinstance(node, MappingNode | SequenceNode):
        body: HttpBody = json(node)
        return body
    if isinstance(node, ScalarNode) and node.tag == STR:
        return str(node.value)
    if not isinstance(node, ScalarNode) or node.tag != TAG + "null":
        reader.fail(
            node,
            f"expected a body: JSON (a mapping or a list) or text (a string), got {describe(node)}",
        )
    return None


def exchanges_data(exchanges: Sequence[HttpExchange]) -> list[dict[str, Any]]:
    """The ``http:`` list as plain data for the YAML dumper (read back equal)."""
    data = []
    for exchange in exchanges:
        request: dict[str, Any] = {"method": exchange.method, "path": exchange.path}
        if exchange.request_body is not None:
            request["body"] = exchange.request_body
        response: dict[str, Any] = {"status": exchange.status}
        if exchange.response_headers:
            response["headers"] = dict(exchange.response_headers)
        if exchange.response_body is not None:
            response["body"] = exchange.response_body
        data.append({"request": request, "response": response})
    return data
