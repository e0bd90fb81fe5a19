"""Faults injected at the boto3 layer, through botocore's own event hooks: the code under test
runs unchanged (the real store, the real client) and sees exactly what botocore hands it when AWS
answers with a server error.

A ``before-call`` handler that returns ``(http_response, parsed)`` short-circuits the request
(this is how botocore's Stubber works): botocore then raises the ClientError it would raise for
that answer from AWS, without sending anything and without retrying.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.awsrequest import AWSResponse


class FailingCalls:
    """Counts the client's calls, in order, and fails the ones whose 1-based index is in ``fail``
    (or every call of an operation named in ``fail_operations``) with HTTP 500
    ``InternalServerError``, as DynamoDB answers when it cannot serve a request."""

    def __init__(self, client: Any, fail: set[int] | None = None, fail_operations: set[str] | None = None) -> None:
        self.calls: list[str] = []
        self.failed: list[str] = []
        self._fail = fail or set()
        self._fail_operations = fail_operations or set()
        self._lock = threading.Lock()
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-call.{service}", self._before_call)

    def _before_call(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        with self._lock:
            self.calls.append(model.name)
            index = len(self.calls)
            if index not in self._fail and model.name not in self._fail_operations:
                return None
            self.failed.append(model.name)
        response = AWSResponse("https://dynamodb.invalid/", 500, {}, None)
        parsed = {
            "Error": {"Code": "InternalServerError", "Message": "injected by the test"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }
        return response, parsed
