"""What each action does to a collaboration: pure functions, no I/O.

(Over 300 lines: one small pure function per action, side by side so each action's effect
reads next to the others; the catalogue refers to them by name.)

`apply(name, collaboration, payload, ctx)` returns an `Effect`: the new
collaboration, or a message to insert, and the action's result. Lifecycle and
membership invariants raise the project's errors (`invalid_transition`,
`not_found`, `validation_failed`).

An action never changes its input and never copies all of it: it works on a
shallow copy (`msgspec.structs.replace`) and replaces, copied, only what it
changes — a list it appends to, the member or activity it edits — recording the
dotted path of each (`touched`). `Effect.changes` is then those paths with their
new values as stored (plus `version`, `updatedAt`, `lastActivityAt`), from which
the engine builds the new document and its MongoDB update (`diff.build_update`)
without walking the rest of the collaboration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import msgspec
from msgspec.structs import replace

from backend.domain import payloads as p
from backend.domain.models import (
    Activity,
    ActivityStatus,
    Actor,
    Collaboration,
    CollaborationSettings,
    Member,
    Message,
)
from backend.errors import InvalidTransition, NotFound, ValidationFailed


class Context(msgspec.Struct):
    actor: Actor
    now: datetime
    new_id: Callable[[str], str]
    actor_email: str | None = None
    # addMember: {"id", "email", "invited", "invitedBy"} from the directory; None while it is only proposed
    resolved_user: dict[str, Any] | None = None
    rules: list[dict[str, Any]] | None = None  # addRule/updateRule: the validated rule set
    suggestions: list[dict[str, Any]] | None = None  # sendMessage by the AI: as stored (domain/suggestions.py)


class Effect(msgspec.Struct):
    collaboration: Collaboration | None = None
    message: Message | None = None
    result: dict[str, Any] = {}
    # An update: each path the action changed, with its new value as stored (see the module's docstring)
    changes: dict[str, Any] = {}


Touched = list[str]
"""The dotted paths (as stored: `members.3.role`, `activities.7`) an action changed."""


def _actor_doc(actor: Actor) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(actor)
    return doc


def create_collaboration(payload: p.CreateCollaboration, ctx: Context) -> Effect:
    from backend.domain.catalogue import DEFAULT_PROTECTED  # (the catalogue imports this module)

    now = ctx.now
    owner = Member(userId=ctx.actor.id or "", email=ctx.actor_email, role="owner", joinedAt=now)
    collab = Collaboration(
        _id=ctx.new_id("col"),
        title=payload.title.strip(),
        description=payload.description,
        status="active",
        members=[owner],
        memberIds=[owner.userId],
        activities=[],
        settings=CollaborationSettings(protectedActions=list(DEFAULT_PROTECTED)),
        rules=[],
        version=1,
        createdAt=now,
        updatedAt=now,
        lastActivityAt=now,
    )
    return Effect(collaboration=collab, result={"collaborationId": collab.id})


def _find_activity(c: Collaboration, activity_id: str) -> tuple[int, Activity]:
    """The activity's index and a copy of it to change (put back with `_put_activity`)."""
    for index, activity in enumerate(c.activities):
        if activity.id == activity_id:
            return index, replace(activity)
    raise NotFound("No such activity.", {"activityId": activity_id})


def _put_activity(c: Collaboration, index: int, activity: Activity, touched: Touched) -> None:
    c.activities = list(c.activities)
    c.activities[index] = activity
    touched.append(f"activities.{index}")


def _move(activity: Activity, allowed_from: tuple[ActivityStatus, ...], to: ActivityStatus) -> None:
    if activity.status not in allowed_from:
        raise InvalidTransition(
            f"An activity that is {activity.status} cannot become {to}.",
            {"activityId": activity.id, "from": activity.status, "to": to},
        )
    activity.status = to


def _member(c: Collaboration, user_id: str) -> tuple[int, Member]:
    for index, member in enumerate(c.members):
        if member.userId == user_id:
            return index, member
    raise NotFound("No such member.", {"userId": user_id})


def _keep_an_owner(c: Collaboration, leaving: Member) -> None:
    if leaving.role == "owner" and len(c.owners()) == 1:
        raise InvalidTransition(
            "A collaboration always has an owner: make someone else owner first.", {"userId": leaving.userId}
        )


def update_details(c: Collaboration, payload: p.UpdateDetails, ctx: Context, touched: Touched) -> dict[str, Any]:
    if payload.title is not None:
        c.title = payload.title.strip()
        touched.append("title")
    if payload.description is not None:
        c.description = payload.description
        touched.append("description")
    return {}


def archive(c: Collaboration, payload: p.Empty, ctx: Context, touched: Touched) -> dict[str, Any]:
    c.status = "archived"
    touched.append("status")
    return {}


def already_member_by_email(c: Collaboration, email: str) -> None:
    """addMember's check before the directory is asked: an email a member already has."""
    email = email.strip().lower()
    if any((m.email or "").lower() == email for m in c.members):
        raise InvalidTransition("That person is already a member.", {"email": email})


def add_member(c: Collaboration, payload: p.AddMember, ctx: Context, touched: Touched) -> dict[str, Any]:
    already_member_by_email(c, payload.email)
    user = ctx.resolved_user
    if user is None:  # only proposed (an approval): the directory is asked when it is carried out
        return {}
    user_id = user.get("id")
    if not user_id:
        raise ValidationFailed.at("payload.email", "Could not resolve that email to a user")
    if c.member(user_id):
        raise InvalidTransition("That person is already a member.", {"userId": user_id})
    member = Member(
        userId=user_id, email=user.get("email") or payload.email.lower(), role=payload.role, joinedAt=ctx.now
    )
    # `invited` is true for everyone added by email outside dev mode, account or not (engine.py): the
    # entry, which every member sees, must not tell who has an account. Their first request after this
    # clears it (auth/invitations.py).
    if user.get("invited"):
        member.invitedAt, member.invitedBy = ctx.now, user.get("invitedBy")
    touched += [f"members.{len(c.members)}", f"memberIds.{len(c.memberIds)}"]
    c.members = [*c.members, member]
    c.memberIds = [*c.memberIds, user_id]
    return {"userId": user_id}


def remove_member(c: Collaboration, payload: p.RemoveMember, ctx: Context, touched: Touched) -> dict[str, Any]:
    _, member = _member(c, payload.userId)
    _keep_an_owner(c, member)
    c.members = [m for m in c.members if m.userId != member.userId]
    c.memberIds = [uid for uid in c.memberIds if uid != member.userId]
    touched += ["members", "memberIds"]
    return {"userId": member.userId}


def change_role(c: Collaboration, payload: p.ChangeRole, ctx: Context, touched: Touched) -> dict[str, Any]:
    index, member = _member(c, payload.userId)
    if member.role == payload.role:
        raise InvalidTransition(f"That member is already {payload.role}.", {"userId": member.userId})
    if payload.role != "owner":
        _keep_an_owner(c, member)
    c.members = list(c.members)
    c.members[index] = replace(member, role=payload.role)
    touched.append(f"members.{index}")
    return {"userId": member.userId, "role": payload.role}


def leave(c: Collaboration, payload: p.Empty, ctx: Context, touched: Touched) -> dict[str, Any]:
    return remove_member(c, p.RemoveMember(userId=ctx.actor.id or ""), ctx, touched)


def propose(c: Collaboration, payload: p.ProposeActivity, ctx: Context, touched: Touched) -> dict[str, Any]:
    if payload.assigneeId is not None and c.member(payload.assigneeId) is None:
        raise ValidationFailed.at("payload.assigneeId", "The assignee must be a member")
    activity = Activity(
        id=ctx.new_id("act"),
        title=payload.title.strip(),
        description=payload.description,
        status="proposed",
        dueAt=payload.dueAt,
        scheduledFor=None,
        assigneeId=payload.assigneeId,
        createdBy=_actor_doc(ctx.actor),
        createdAt=ctx.now,
        updatedAt=ctx.now,
    )
    touched.append(f"activities.{len(c.activities)}")
    c.activities = [*c.activities, activity]
    return {"activityId": activity.id}


def schedule(c: Collaboration, payload: p.ScheduleActivity, ctx: Context, touched: Touched) -> dict[str, Any]:
    index, activity = _find_activity(c, payload.activityId)
    _move(activity, ("proposed",), "scheduled")
    activity.scheduledFor = payload.scheduledFor
    activity.updatedAt = ctx.now
    _put_activity(c, index, activity, touched)
    return {"activityId": activity.id}


def complete(c: Collaboration, payload: p.CompleteActivity, ctx: Context, touched: Touched) -> dict[str, Any]:
    index, activity = _find_activity(c, payload.activityId)
    _move(activity, ("scheduled",), "done")
    activity.completedAt = ctx.now
    activity.updatedAt = ctx.now
    _put_activity(c, index, activity, touched)
    return {"activityId": activity.id}


def cancel(c: Collaboration, payload: p.CancelActivity, ctx: Context, touched: Touched) -> dict[str, Any]:
    index, activity = _find_activity(c, payload.activityId)
    _move(activity, ("proposed", "scheduled"), "cancelled")
    activity.cancelReason = payload.reason
    activity.updatedAt = ctx.now
    _put_activity(c, index, activity, touched)
    return {"activityId": activity.id}


def set_protected(c: Collaboration, payload: p.SetProtectedActions, ctx: Context, touched: Touched) -> dict[str, Any]:
    from backend.domain.catalogue import AI_ACTIONS  # (the catalogue imports this module)

    for index, name in enumerate(payload.actions):
        if name not in AI_ACTIONS:
            raise ValidationFailed.at(
                f"payload.actions.{index}", f"{name!r} is not an action the AI may take ({', '.join(AI_ACTIONS)})"
            )
    c.settings = replace(c.settings, protectedActions=sorted(set(payload.actions)))
    touched.append("settings.protectedActions")
    return {"protectedActions": c.settings.protectedActions}


def set_rules(c: Collaboration, payload: Any, ctx: Context, touched: Touched) -> dict[str, Any]:
    if ctx.rules is None:  # pragma: no cover - the engine always validates first
        raise ValidationFailed.at("payload.rule", "Rule not validated")
    c.rules = ctx.rules
    touched.append("rules")
    if isinstance(payload, p.RemoveRule):
        return {"ruleId": payload.ruleId}
    return {"ruleId": payload.rule.get("id") or ctx.rules[-1]["id"]}


def send_message(collab: Collaboration, payload: p.SendMessage, ctx: Context) -> Effect:
    actor = ctx.actor
    author = {"type": actor.type, "id": actor.id or actor.runId or actor.ruleId}
    message = Message(
        _id=ctx.new_id("msg"),
        collaborationId=collab.id,
        author=author,
        text=payload.text,
        createdAt=ctx.now,
        replyTo=payload.replyTo,
        suggestions=ctx.suggestions,
    )
    return Effect(message=message, result={"messageId": message._id})


def apply(name: str, collab: Collaboration | None, payload: Any, ctx: Context) -> Effect:
    """Run action `name` (its catalogue `effect`) on a copy of `collab`; the input is never changed."""
    from backend.domain.catalogue import CATALOGUE  # (the catalogue imports this module)

    spec = CATALOGUE[name]
    effect = spec.effect
    assert effect is not None  # catalogue.declare refuses a spec without one
    if spec.kind == "create":
        created: Effect = effect(payload, ctx)
        return created
    assert collab is not None
    if spec.kind == "message":
        posted: Effect = effect(collab, payload, ctx)
        return posted
    changed = replace(collab)  # shallow: each action copies what it changes (see the module's docstring)
    touched: Touched = []
    result = effect(changed, payload, ctx, touched)
    changed.version = collab.version + 1
    changed.updatedAt = ctx.now
    changed.lastActivityAt = ctx.now
    changes = {path: _stored(_at(changed, path)) for path in touched}
    changes.update(version=changed.version, updatedAt=ctx.now, lastActivityAt=ctx.now)
    return Effect(collaboration=changed, result=result, changes=changes)


def _at(value: Any, path: str) -> Any:
    """The value at a dotted path of a struct (list indexes as numbers)."""
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else getattr(value, part)
    return value


def _stored(value: Any) -> Any:
    """A value as it is stored (what `to_doc` makes of it inside the whole collaboration)."""
    return msgspec.to_builtins(value, builtin_types=(datetime,))
