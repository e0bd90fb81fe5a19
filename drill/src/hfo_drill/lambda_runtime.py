"""What the Lambda runtime hands a handler, for callers that run the real handlers in their own
process (the drill, the benchmarks, the tests): the context object, and the event a Lambda
Function URL delivers.

The event follows the AWS Lambda developer guide ("Invoking Lambda function URLs", request
payload format 2.0) for auth type NONE: `version` 2.0, `routeKey`/`stage` `$default`, `rawPath`,
`rawQueryString`, `cookies` (taken out of the Cookie header), `headers` (lower-case names,
repeated headers joined with commas), `queryStringParameters` (repeated names joined with commas;
absent without a query), `requestContext` (`accountId` "anonymous", `apiId`/`domainPrefix` the URL
id, `domainName`, `http` with method, path, protocol, sourceIp, userAgent, `requestId`, `time`,
`timeEpoch`), `body` (absent when empty; base64 with `isBase64Encoded` true unless the content
type is textual), plus the `x-forwarded-*` and `x-amzn-*` headers AWS adds.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aws_lambda_powertools.utilities.typing import LambdaContext as _RuntimeContext

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
URL_ID = "abcdefghijklmnopqrstuvwxyz012345"  # a Function URL id: 32 lower-case letters and digits

_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/yaml",
)


class LambdaContext(_RuntimeContext):
    """The context object the Lambda runtime passes a handler: the attributes Powertools reads
    (name, version, ARN, memory, request id, log group and stream) and the remaining time."""

    def __init__(
        self,
        function_name: str = "hfo-watchdog",
        *,
        function_version: str = "$LATEST",
        memory_limit_in_mb: int = 256,
        timeout_s: float = 30.0,
        invoked_function_arn: str = "",
        region: str = REGION,
    ) -> None:
        self._function_name = function_name
        self._function_version = function_version
        self._memory_limit_in_mb = memory_limit_in_mb
        self._invoked_function_arn = (
            invoked_function_arn or f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        )
        self._aws_request_id = str(uuid.uuid4())
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.timeout_s = timeout_s
        self._deadline = time.monotonic() + timeout_s

    @classmethod
    def for_function(cls, config: Mapping[str, Any]) -> LambdaContext:
        """A context as Lambda builds it for the function `config` (GetFunctionConfiguration)."""
        return cls(
            str(config["FunctionName"]),
            function_version=str(config.get("Version", "$LATEST")),
            memory_limit_in_mb=int(config.get("MemorySize", 128)),
            timeout_s=float(config.get("Timeout", 3)),
            invoked_function_arn=str(config.get("FunctionArn", "")),
        )

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]  # an instance's own deadline; the base's is a static stub
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _textual(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(_TEXT_TYPES) or media.endswith(("+json", "+xml"))


def _request_time(now: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))


def function_url_event(
    body: bytes = b"",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    *,
    method: str = "POST",
    target: str = "/",
    source_ip: str = "127.0.0.1",
    url_id: str = URL_ID,
    region: str = REGION,
    protocol: str = "HTTP/1.1",
    request_id: str | None = None,
    now: float | None = None,
    tls_version: str = "TLSv1.3",
    tls_cipher: str = "TLS_AES_128_GCM_SHA256",
    port: int = 443,
    base64_body: bool | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event for one request to a Function URL with auth type NONE.
    `base64_body` forces the body's encoding (a client may send JSON as any content type); by
    default it is AWS's: base64 unless the content type is textual."""
    at = time.time() if now is None else now
    rid = request_id or str(uuid.uuid4())
    parts = urlsplit(target)
    path = parts.path or "/"
    joined: dict[str, str] = {}
    cookies: list[str] = []
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    for name, value in pairs:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    joined.setdefault("x-forwarded-for", source_ip)
    joined.setdefault("x-forwarded-proto", "https")
    joined.setdefault("x-forwarded-port", str(port))
    joined["x-amzn-tls-version"] = tls_version
    joined["x-amzn-tls-cipher-suite"] = tls_cipher
    joined["x-amzn-trace-id"] = f"Root=1-{int(at):08x}-{uuid.uuid4().hex[:24]}"
    domain = f"{url_id}.lambda-url.{region}.on.aws"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": parts.query,
        "headers": joined,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": domain,
            "domainPrefix": url_id,
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": rid,
            "routeKey": "$default",
            "stage": "$default",
            "time": _request_time(at),
            "timeEpoch": int(at * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if parts.query:
        params: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            params[name] = f"{params[name]},{value}" if name in params else value
        event["queryStringParameters"] = params
    if body:
        encode = not _textual(joined.get("content-type", "")) if base64_body is None else base64_body
        if not encode:
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                encode = True  # AWS sends a body that is not UTF-8 as base64, whatever its type
        if encode:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event
