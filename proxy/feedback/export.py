"""``loupe feedback export``: (AI output, human correction, reason, context) as JSONL, the
raw material for fine-tuning and for evaluating the next model."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

from proxy.stores.base import Feedback


def write_jsonl(events: Iterable[Feedback], out: TextIO) -> int:
    written = 0
    for event in events:
        record = {
            "id": event.id,
            "review_id": event.review_id,
            "path": event.path,
            "component": event.component,
            "action": event.action,
            "ai_output": event.ai_output,
            "correction": event.correction,
            "reason": event.reason,
            "reviewer": event.reviewer,
            "seconds": event.seconds,
            "context": event.context,
            "created": event.created,
        }
        out.write(json.dumps(record, sort_keys=True) + "\n")
        written += 1
    return written
