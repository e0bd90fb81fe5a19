"""What the watchdog published: an SQS queue subscribed to an SNS topic, read back as the alerts
were delivered (subject, first line, and the `severity` and `key` message attributes the
notifier sets). The drill's own tap on the alert topic; the tests use it the same way."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3


@dataclass(frozen=True)
class Alert:
    subject: str
    message: str
    severity: str
    key: str

    @property
    def title(self) -> str:
        """The subject, or the message's first line when there is none."""
        return self.subject or (self.message.splitlines()[0] if self.message else "")


def parse_delivery(body: str) -> Alert:
    """One SQS message body: the SNS envelope (raw delivery off), or a raw message."""
    try:
        envelope: Mapping[str, Any] = json.loads(body)
    except json.JSONDecodeError:
        return Alert("", body, "", "")
    if not isinstance(envelope, Mapping) or "Message" not in envelope:
        return Alert("", body, "", "")
    attrs = envelope.get("MessageAttributes") or {}
    return Alert(
        subject=str(envelope.get("Subject") or ""),
        message=str(envelope.get("Message") or ""),
        severity=str(attrs.get("severity", {}).get("Value", "")),
        key=str(attrs.get("key", {}).get("Value", "")),
    )


class AlertInbox:
    """An SQS queue subscribed to `topic_arn`; `drain()` returns what arrived since the last call,
    `messages()` everything so far. `close()` unsubscribes and deletes the queue."""

    def __init__(self, topic_arn: str, queue_name: str, *, session: Any = None) -> None:
        session = session if session is not None else boto3.session.Session()
        self.topic_arn = topic_arn
        self._sns = session.client("sns")
        self._sqs = session.client("sqs")
        self.queue_url = str(self._sqs.create_queue(QueueName=queue_name)["QueueUrl"])
        arn = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._subscription = str(
            self._sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)["SubscriptionArn"]
        )
        self.received: list[Alert] = []

    @classmethod
    def on_new_topic(cls, name: str = "hfo-alerts", *, session: Any = None) -> AlertInbox:
        """A fresh SNS topic `name` with an inbox `<name>-inbox` on it."""
        session = session if session is not None else boto3.session.Session()
        topic = str(session.client("sns").create_topic(Name=name)["TopicArn"])
        return cls(topic, f"{name}-inbox", session=session)

    def drain(self) -> list[Alert]:
        new: list[Alert] = []
        for _ in range(20):  # bounded: at most 200 messages per call
            batch = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            if not batch.get("Messages"):
                break
            for m in batch["Messages"]:
                new.append(parse_delivery(m.get("Body", "")))
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        self.received.extend(new)
        return new

    def messages(self) -> list[Alert]:
        self.drain()
        return list(self.received)

    def close(self) -> None:
        self._sns.unsubscribe(SubscriptionArn=self._subscription)
        self._sqs.delete_queue(QueueUrl=self.queue_url)
