"""The offline provider: rules that need no model.

It reads the same collaboration summaries an LLM would get and answers in the
same JSON, so its proposals go through the same validation and engine:

- a reminder message (sendMessage) about activities proposed more than two
  days ago and still not scheduled, one message per collaboration, naming
  those activities in `reminds` (the check-in posts at most one reminder per
  activity a day);
- a proposal to cancel (cancelActivity, protected by default, so an owner
  approves it) each activity scheduled for more than a week ago and not done.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from backend.ai.provider import Completion, Task
from backend.clock import parse_iso

REMIND_AFTER = timedelta(days=2)
STALE_AFTER = timedelta(days=7)


def _days(now: datetime, then: datetime) -> int:
    return max(0, (now - then).days)


def _quote(title: str | None) -> str:
    return f"“{title or 'untitled'}”"


def proposals_for(summary: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    cid = summary["collaborationId"]
    waiting, stale = [], []
    for activity in summary.get("activities", []):
        created = parse_iso(activity["createdAt"]) if activity.get("createdAt") else None
        scheduled = parse_iso(activity["scheduledFor"]) if activity.get("scheduledFor") else None
        if activity["status"] == "proposed" and created is not None and now - created > REMIND_AFTER:
            waiting.append((activity, _days(now, created)))
        if activity["status"] == "scheduled" and scheduled is not None and now - scheduled > STALE_AFTER:
            stale.append((activity, _days(now, scheduled)))
    actions = []
    if waiting:
        items = "; ".join(f"{_quote(a.get('title'))}, proposed {d} days ago" for a, d in waiting[:5])
        more = f" (and {len(waiting) - 5} more)" if len(waiting) > 5 else ""
        actions.append(
            {
                "collaborationId": cid,
                "action": "sendMessage",
                "payload": {
                    "text": f"Friendly reminder: these activities are still waiting for a date: "
                    f"{items}{more}. Shall we schedule them?"
                },
                "reason": "Activities proposed more than two days ago are not scheduled yet.",
                "reminds": [a["id"] for a, _ in waiting],
            }
        )
    for activity, days in stale:
        actions.append(
            {
                "collaborationId": cid,
                "action": "cancelActivity",
                "payload": {
                    "activityId": activity["id"],
                    "reason": f"It was scheduled {days} days ago and never marked done.",
                },
                "reason": f"{_quote(activity.get('title'))} was scheduled more than a week ago and is not done.",
            }
        )
    return actions


def _chat_reply(summary: dict[str, Any], actions: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for activity in summary.get("activities", []):
        counts[activity["status"]] = counts.get(activity["status"], 0) + 1
    open_part = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no open activities"
    text = (
        f"I'm the offline assistant (no AI model is configured). {summary.get('title') or 'This collaboration'} "
        f"has {open_part}."
    )
    if actions:
        text += " Here is what I'd suggest: " + " ".join(a["reason"] for a in actions)
    else:
        text += " Nothing needs attention right now."
    return text


class OfflineProvider:
    name = "offline"
    model = "rules"
    batches = None

    async def complete(self, task: Task) -> Completion:
        actions = [a for summary in task.context for a in proposals_for(summary, task.now)]
        if task.kind == "chat":
            summary = task.context[0]
            answer: dict[str, Any] = {
                "reply": _chat_reply(summary, actions),
                "actions": [{k: v for k, v in a.items() if k not in ("collaborationId", "reminds")} for a in actions],
            }
        else:
            answer = {"actions": actions}
        return Completion(text=msgspec.json.encode(answer).decode(), model=self.model)

    async def aclose(self) -> None:
        return None
