"""An in-memory DynamoDB client for the simulator: exactly the calls and condition expressions
`hfo_watchdog.store.DynamoStateStore` makes, with DynamoDB's answers.

- calls: batch_get_item, get_item, put_item, transact_write_items (Put, ConditionCheck, and
  Update with `SET a = :v`), query (pk = :pk, newest first), scan (for tests);
- conditions: `attribute_not_exists(a)`, `attribute_exists(a)` and `a = :v`, alone or joined by
  `AND`, the forms the store writes. Anything else is refused with a ValidationException, as
  DynamoDB refuses an expression it cannot parse, so a store that starts writing a new form
  fails loudly here instead of being judged wrongly;
- a failed condition of put_item raises ConditionalCheckFailedException; a failed condition in
  a transaction cancels the whole transaction (nothing written) with
  TransactionCanceledException and one CancellationReasons entry per item, in order;
- a transaction that names one item twice is a ValidationException, as in DynamoDB.

Items are stored as the client sends them (attribute-value maps), so the store's codec runs for
real. By default reads hand back the stored maps themselves and writes keep the client's nested
maps (the store never changes what it reads or wrote, and copying dominated the simulator's
time); `copy_reads=True` copies both ways. tests/sim/test_dynamo.py replays one call sequence
against this fake and the moto server and compares every answer and the table, and checks that
a whole simulated run changes nothing it read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

_NOT_EXISTS = re.compile(r"^attribute_not_exists\((\w+)\)$")
_EXISTS = re.compile(r"^attribute_exists\((\w+)\)$")
_EQUALS = re.compile(r"^(\w+) = (:\w+)$")
_QUERY = re.compile(r"^pk = (:\w+)$")
_SET = re.compile(r"^SET (\w+) = (:\w+)$")

Item = dict[str, Any]


def _error(operation: str, code: str, message: str, **extra: Any) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}, **extra}
    return ClientError(response, operation)  # type: ignore[arg-type]


class FakeDynamoDB:
    """The slice of a boto3 DynamoDB client the state store uses, for one or more tables keyed
    by (`pk`, `sk`). `calls` counts the requests by operation."""

    def __init__(self, *tables: str, copy_reads: bool = False) -> None:
        self.copy_reads = copy_reads
        self.tables: dict[str, dict[tuple[str, str], Item]] = {name: {} for name in tables}
        self.calls: dict[str, int] = {}

    # -- helpers

    def _table(self, operation: str, name: str) -> dict[tuple[str, str], Item]:
        try:
            return self.tables[name]
        except KeyError:
            raise _error(operation, "ResourceNotFoundException", "Requested resource not found") from None

    @staticmethod
    def _key(operation: str, key: Mapping[str, Any]) -> tuple[str, str]:
        try:
            return str(key["pk"]["S"]), str(key["sk"]["S"])
        except (KeyError, TypeError):
            raise _error(
                operation, "ValidationException", "The provided key element does not match the schema"
            ) from None

    def _write(self, item: Mapping[str, Any]) -> Item:
        # The store builds a fresh item for every write and never touches it again.
        return _copy(dict(item)) if self.copy_reads else dict(item)

    def _read(self, item: Item) -> Item:
        return _copy(item) if self.copy_reads else item

    def _count(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1

    @staticmethod
    def _holds(operation: str, item: Item | None, expression: str | None, values: Mapping[str, Any] | None) -> bool:
        if expression is None:
            return True
        text = expression.strip()
        if " AND " in text:
            return all(FakeDynamoDB._holds(operation, item, part, values) for part in text.split(" AND "))
        if m := _NOT_EXISTS.match(text):
            return item is None or m.group(1) not in item
        if m := _EXISTS.match(text):
            return item is not None and m.group(1) in item
        if m := _EQUALS.match(text):
            name, placeholder = m.groups()
            if values is None or placeholder not in values:
                raise _error(
                    operation,
                    "ValidationException",
                    f"An expression attribute value used in expression is not defined; attribute value: {placeholder}",
                )
            return item is not None and name in item and _same(item[name], values[placeholder])
        raise _error(operation, "ValidationException", f"the simulator's DynamoDB does not parse {expression!r}")

    # -- reads

    def get_item(self, *, TableName: str, Key: Mapping[str, Any], ConsistentRead: bool = False) -> dict[str, Any]:
        self._count("get_item")
        item = self._table("GetItem", TableName).get(self._key("GetItem", Key))
        return {} if item is None else {"Item": self._read(item)}

    def batch_get_item(self, *, RequestItems: Mapping[str, Any]) -> dict[str, Any]:
        self._count("batch_get_item")
        responses: dict[str, list[Item]] = {}
        for name, request in RequestItems.items():
            table = self._table("BatchGetItem", name)
            keys = [self._key("BatchGetItem", k) for k in request["Keys"]]
            if len(set(keys)) != len(keys):
                raise _error("BatchGetItem", "ValidationException", "Provided list of item keys contains duplicates")
            responses[name] = [self._read(table[k]) for k in keys if k in table]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def query(
        self,
        *,
        TableName: str,
        KeyConditionExpression: str,
        ExpressionAttributeValues: Mapping[str, Any],
        ScanIndexForward: bool = True,
        Limit: int | None = None,
        ConsistentRead: bool = False,
    ) -> dict[str, Any]:
        self._count("query")
        m = _QUERY.match(KeyConditionExpression.strip())
        if m is None:
            raise _error("Query", "ValidationException", f"unsupported key condition {KeyConditionExpression!r}")
        pk = ExpressionAttributeValues[m.group(1)]["S"]
        table = self._table("Query", TableName)
        found = sorted((k for k in table if k[0] == pk), key=lambda k: k[1], reverse=not ScanIndexForward)
        if Limit is not None:
            found = found[:Limit]
        return {"Items": [self._read(table[k]) for k in found], "Count": len(found)}

    def scan(self, *, TableName: str, ConsistentRead: bool = False) -> dict[str, Any]:
        self._count("scan")
        table = self._table("Scan", TableName)
        return {"Items": [_copy(table[k]) for k in sorted(table)]}

    # -- writes

    def put_item(
        self,
        *,
        TableName: str,
        Item: Mapping[str, Any],
        ConditionExpression: str | None = None,
        ExpressionAttributeValues: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        self._count("put_item")
        table = self._table("PutItem", TableName)
        key = self._key("PutItem", Item)
        if not self._holds("PutItem", table.get(key), ConditionExpression, ExpressionAttributeValues):
            raise _error("PutItem", "ConditionalCheckFailedException", "The conditional request failed")
        table[key] = self._write(Item)
        return {}

    def transact_write_items(self, *, TransactItems: list[Mapping[str, Any]]) -> dict[str, Any]:
        self._count("transact_write_items")
        op = "TransactWriteItems"
        if not 1 <= len(TransactItems) <= 100:
            raise _error(op, "ValidationException", "TransactItems must hold 1 to 100 items")
        plans: list[tuple[str, dict[tuple[str, str], Item], tuple[str, str], Mapping[str, Any]]] = []
        seen: set[tuple[str, tuple[str, str]]] = set()
        for entry in TransactItems:
            if len(entry) != 1:
                raise _error(op, "ValidationException", "each transaction item needs exactly one operation")
            (kind, body), *_ = entry.items()
            if kind == "Put":
                key = self._key(op, body["Item"])
            elif kind == "ConditionCheck":
                key = self._key(op, body["Key"])
                if "ConditionExpression" not in body:
                    raise _error(op, "ValidationException", "a ConditionCheck needs a ConditionExpression")
            elif kind == "Update":
                key = self._key(op, body["Key"])
                update = body.get("UpdateExpression", "")
                if _SET.match(update.strip()) is None:
                    raise _error(op, "ValidationException", f"the simulator's DynamoDB does not parse {update!r}")
            else:
                raise _error(op, "ValidationException", f"the simulator's DynamoDB does not do {kind} in transactions")
            table = self._table(op, body["TableName"])
            if (body["TableName"], key) in seen:
                raise _error(
                    op,
                    "ValidationException",
                    "Transaction request cannot include multiple operations on one item",
                )
            seen.add((body["TableName"], key))
            plans.append((kind, table, key, body))
        reasons: list[dict[str, str]] = []
        for _kind, table, key, body in plans:
            ok = self._holds(op, table.get(key), body.get("ConditionExpression"), body.get("ExpressionAttributeValues"))
            reasons.append(
                {"Code": "None"}
                if ok
                else {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
            )
        if any(r["Code"] != "None" for r in reasons):
            codes = ", ".join(r["Code"] for r in reasons)
            raise _error(
                op,
                "TransactionCanceledException",
                f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
                CancellationReasons=reasons,
            )
        for kind, table, key, body in plans:
            if kind == "Put":
                table[key] = self._write(body["Item"])
            elif kind == "Update":  # SET a = :v; an absent item is created with its key, as DynamoDB does
                m = _SET.match(body["UpdateExpression"].strip())
                assert m is not None
                name, placeholder = m.groups()
                current = dict(table.get(key) or self._write(body["Key"]))
                current[name] = _copy(body["ExpressionAttributeValues"][placeholder])
                table[key] = current
        return {}


def _same(a: Any, b: Any) -> bool:
    """DynamoDB's equality of two attribute values: numbers by value, the rest exactly."""
    if isinstance(a, Mapping) and isinstance(b, Mapping) and "N" in a and "N" in b:
        return Decimal(str(a["N"])) == Decimal(str(b["N"]))
    return bool(a == b)


def _copy(value: Any) -> Any:
    """A deep copy of an attribute value (dicts, lists and scalars only): faster than deepcopy."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
