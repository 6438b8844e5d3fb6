"""The action catalogue (DESIGN.md section 3): payload, least role, AI policy."""

from __future__ import annotations

from typing import Literal, NamedTuple

from backend.domain import payloads as p

AIPolicy = Literal["auto", "approval", "never"]
Kind = Literal["create", "update", "message"]


class ActionSpec(NamedTuple):
    name: str
    payload: type
    role: str | None  # least role; None: any signed-in user
    ai: AIPolicy
    kind: Kind = "update"


CATALOGUE: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("createCollaboration", p.CreateCollaboration, None, "never", "create"),
        ActionSpec("updateDetails", p.UpdateDetails, "editor", "auto"),
        ActionSpec("archiveCollaboration", p.Empty, "owner", "approval"),
        ActionSpec("addMember", p.AddMember, "owner", "approval"),
        ActionSpec("removeMember", p.RemoveMember, "owner", "approval"),
        ActionSpec("changeRole", p.ChangeRole, "owner", "approval"),
        ActionSpec("leaveCollaboration", p.Empty, "viewer", "never"),
        ActionSpec("proposeActivity", p.ProposeActivity, "editor", "auto"),
        ActionSpec("scheduleActivity", p.ScheduleActivity, "editor", "auto"),
        ActionSpec("completeActivity", p.CompleteActivity, "editor", "auto"),
        ActionSpec("cancelActivity", p.CancelActivity, "editor", "approval"),
        ActionSpec("sendMessage", p.SendMessage, "viewer", "auto", "message"),
        ActionSpec("setProtectedActions", p.SetProtectedActions, "owner", "never"),
        ActionSpec("addRule", p.AddRule, "owner", "never"),
        ActionSpec("updateRule", p.UpdateRule, "owner", "never"),
        ActionSpec("removeRule", p.RemoveRule, "owner", "never"),
    )
}

# Actions the AI may propose at all, and those that need an owner's approval by default.
AI_ACTIONS = tuple(name for name, spec in CATALOGUE.items() if spec.ai != "never")
DEFAULT_PROTECTED = tuple(name for name, spec in CATALOGUE.items() if spec.ai == "approval")
# Actions still allowed on an archived collaboration.
ALLOWED_WHEN_ARCHIVED = frozenset({"leaveCollaboration", "removeMember", "changeRole", "setProtectedActions"})
