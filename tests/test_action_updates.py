"""An action's update is built from what it changed (domain/effects.py `changes`, diff.build_update),
not by diffing the whole collaboration. It must be exactly the update the full diff gave before
(diff.update_for on the document before and the whole document after: what the change stream's
updateDescription, and so every client's `changes`, are made of), for every action of the catalogue,
on a realistic collaboration. The store's size check from the update must equal a full encode."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import bson
import msgspec
import pytest

from backend.auth.dev_tokens import dev_user_id
from backend.domain import effects, payloads
from backend.domain.catalogue import CATALOGUE
from backend.domain.diff import build_update, update_for
from backend.domain.models import Actor, Collaboration, Member, Members, from_doc, read_collaboration, to_doc
from backend.errors import DocumentTooLarge
from backend.preparations import rules_after as _rules_after
from backend.runtime import Runtime
from backend.settings import test_settings
from backend.store.size import bson_size, size_after
from tests.support import OWNER, open_runtime, sign_in, user

NOW = datetime(2026, 12, 2, 9, 30, 15, 123456, tzinfo=timezone.utc)
MEMBERS = 100
CASES = 31  # len(cases(...))
THANK_YOU = {
    "name": "Thank whoever completes",
    "when": {"action": "completeActivity"},
    "then": {"action": {"name": "sendMessage", "payload": {"text": "Thanks!"}}},
}
CANCEL_NEEDS_OWNER = {
    "name": "The AI's cancellations need approval",
    "when": {"action": "cancelActivity", "actor": "ai"},
    "then": {"require_approval": {"reason": "The AI cancels only with approval."}},
}


@pytest.fixture(scope="module")
def realistic():
    """A collaboration as the engine makes it: 100 members (some invited by email, some editors and
    viewers, two owners), activities in every status, rules, protected actions changed."""
    import asyncio

    async def build() -> dict[str, Any]:
        runtime = await open_runtime()
        try:
            engine, owner = runtime.engine, user(OWNER)
            emails = [f"m{i}@example.com" for i in range(MEMBERS - 1)]
            await sign_in(runtime, *emails[: MEMBERS // 2])  # the others are invited (invitedAt, invitedBy)
            cid = (
                await engine.run(
                    "createCollaboration", owner, None, {"title": "Trip", "description": "Our trip"}, actor_email=OWNER
                )
            ).collaborationId
            for i, email in enumerate(emails):
                role = "owner" if i == 3 else ("viewer" if i % 3 else "editor")
                await engine.run("addMember", owner, cid, {"email": email, "role": role})
            ids = []
            for i in range(40):
                out = await engine.run(
                    "proposeActivity",
                    owner,
                    cid,
                    {
                        "title": f"Activity {i}",
                        "description": "d" * (i % 7) or None,
                        "dueAt": "2026-12-20T10:00:00Z" if i % 2 else None,
                        "assigneeId": dev_user_id(emails[i]) if i % 4 == 0 else None,
                    },
                )
                ids.append(out.result["activityId"])
            for i in range(0, 40, 3):
                await engine.run(
                    "scheduleActivity", owner, cid, {"activityId": ids[i], "scheduledFor": "2026-12-21T09:00:00Z"}
                )
            for i in range(0, 40, 9):
                await engine.run("completeActivity", owner, cid, {"activityId": ids[i]})
            for i in range(1, 40, 10):
                await engine.run(
                    "cancelActivity", owner, cid, {"activityId": ids[i], "reason": "rain" if i % 2 else None}
                )
            await engine.run("addRule", owner, cid, {"rule": THANK_YOU})
            await engine.run("addRule", owner, cid, {"rule": CANCEL_NEEDS_OWNER})
            await engine.run("setProtectedActions", owner, cid, {"actions": ["cancelActivity", "removeMember"]})
            return await runtime.store.collaborations.get(cid)
        finally:
            await runtime.close()

    return asyncio.run(build())


def _status(doc: dict[str, Any], status: str, which: int = 0) -> str:
    return [a["id"] for a in doc["activities"] if a["status"] == status][which]


def cases(doc: dict[str, Any]) -> list[tuple[str, Actor, dict[str, Any], dict[str, Any] | None]]:
    """(action, actor, payload, addMember's directory answer) covering every action of the catalogue."""
    owner = user(OWNER)
    members = doc["members"]
    editor = next(m for m in members if m["role"] == "editor")
    viewer = next(m for m in reversed(members) if m["role"] == "viewer")
    invited = next(m for m in members if "invitedAt" in m)
    rule_ids = [r["id"] for r in doc["rules"]]
    return [
        ("updateDetails", owner, {"title": "  New title "}, None),
        ("updateDetails", owner, {"description": "Plans"}, None),
        ("updateDetails", owner, {"title": "Trip", "description": "Our trip"}, None),  # changes nothing
        ("updateDetails", owner, {"title": "Trip 2", "description": "x" * 500}, None),
        ("archiveCollaboration", owner, {}, None),
        (
            "addMember",
            owner,
            {"email": "new@example.com", "role": "editor"},
            {"id": dev_user_id("new@example.com"), "email": "new@example.com", "invited": False, "invitedBy": None},
        ),
        (
            "addMember",
            owner,
            {"email": "Inv@Example.com", "role": "viewer"},
            {"id": dev_user_id("inv@example.com"), "email": "inv@example.com", "invited": True, "invitedBy": owner.id},
        ),
        ("removeMember", owner, {"userId": members[50]["userId"]}, None),
        ("removeMember", owner, {"userId": members[-1]["userId"]}, None),
        ("removeMember", owner, {"userId": invited["userId"]}, None),
        ("changeRole", owner, {"userId": editor["userId"], "role": "viewer"}, None),
        ("changeRole", owner, {"userId": viewer["userId"], "role": "owner"}, None),
        ("leaveCollaboration", Actor.user(viewer["userId"]), {}, None),
        ("leaveCollaboration", Actor.user(members[1]["userId"]), {}, None),
        ("proposeActivity", owner, {"title": "Swim"}, None),
        (
            "proposeActivity",
            Actor.ai("run_1"),
            {"title": "Hike", "description": "Up", "dueAt": "2026-12-24T08:00:00Z", "assigneeId": editor["userId"]},
            None,
        ),
        (
            "scheduleActivity",
            owner,
            {"activityId": _status(doc, "proposed"), "scheduledFor": "2026-12-22T10:00:00Z"},
            None,
        ),
        (
            "scheduleActivity",
            owner,
            {"activityId": _status(doc, "proposed", -1), "scheduledFor": "2026-12-22T10:00:00.5+01:00"},
            None,
        ),
        ("completeActivity", owner, {"activityId": _status(doc, "scheduled")}, None),
        (
            "completeActivity",
            Actor(type="rule", ruleId=rule_ids[0]),
            {"activityId": _status(doc, "scheduled", -1)},
            None,
        ),
        ("cancelActivity", owner, {"activityId": _status(doc, "proposed", 1), "reason": "Too cold"}, None),
        ("cancelActivity", owner, {"activityId": _status(doc, "scheduled", 1)}, None),
        (
            "setProtectedActions",
            owner,
            {"actions": ["cancelActivity", "removeMember", "addMember", "archiveCollaboration"]},
            None,
        ),
        ("setProtectedActions", owner, {"actions": ["addMember"]}, None),
        ("setProtectedActions", owner, {"actions": ["removeMember", "cancelActivity"]}, None),  # the same, sorted
        ("setProtectedActions", owner, {"actions": []}, None),
        ("addRule", owner, {"rule": {**THANK_YOU, "name": "Another"}}, None),
        ("updateRule", owner, {"rule": {**THANK_YOU, "id": rule_ids[0], "name": "Renamed"}}, None),
        ("updateRule", owner, {"rule": {**CANCEL_NEEDS_OWNER, "id": rule_ids[1], "enabled": False}}, None),
        ("removeRule", owner, {"ruleId": rule_ids[0]}, None),
        ("removeRule", owner, {"ruleId": rule_ids[1]}, None),
    ]


def _context(
    name: str, collab: Collaboration, actor: Actor, payload: Any, invitee: dict[str, Any] | None, now: datetime
) -> effects.Context:
    ctx = effects.Context(
        actor=actor, now=now, new_id=lambda prefix: f"{prefix}_fixed", actor_email=None, resolved_user=invitee
    )
    if name in ("addRule", "updateRule", "removeRule"):
        ctx.rules = _rules_after(name, collab, payload, 4000)
    return ctx


def _last_action(name: str, actor: Actor, now: datetime) -> dict[str, Any]:
    return {"name": name, "actor": msgspec.to_builtins(actor), "at": now}


def old_path(doc: dict[str, Any], name: str, actor: Actor, payload: Any, ctx: effects.Context):
    """What the engine did before: the action on a deep copy, the whole new document, the full diff."""
    changed = copy.deepcopy(from_doc(doc, Collaboration))
    result = CATALOGUE[name].effect(changed, payload, ctx, [])
    changed.version += 1
    changed.updatedAt = changed.lastActivityAt = ctx.now
    new_doc = to_doc(changed)
    new_doc["lastAction"] = _last_action(name, actor, ctx.now)
    return new_doc, update_for(doc, new_doc), result


def new_path(doc: dict[str, Any], name: str, actor: Actor, payload: Any, ctx: effects.Context):
    """What the engine does now (engine.py `_attempt`: its read converts members as they are read)."""
    effect = effects.apply(name, read_collaboration(doc), payload, ctx)
    new_doc, update = build_update(doc, {**effect.changes, "lastAction": _last_action(name, actor, ctx.now)})
    return new_doc, update, effect.result


def test_the_cases_cover_every_action_that_changes_a_collaboration(realistic):
    covered = {name for name, *_ in cases(realistic)}
    assert covered == set(CATALOGUE) - {"createCollaboration", "sendMessage"}
    assert len(cases(realistic)) == CASES


@pytest.mark.parametrize("index", range(CASES))
@pytest.mark.parametrize("now", [NOW, None], ids=["later", "same-time"])
def test_the_update_built_from_the_action_is_the_full_diffs(realistic, index, now):
    doc = copy.deepcopy(realistic)
    kept = copy.deepcopy(doc)
    assert len(doc["members"]) == MEMBERS and len(doc["activities"]) == 40
    name, actor, raw, invitee = cases(doc)[index]
    now = now or doc["updatedAt"]  # an action within the same clock tick: updatedAt does not change
    payload = payloads.decode(CATALOGUE[name].payload, raw)
    collab = from_doc(doc, Collaboration)
    ctx = _context(name, collab, actor, payload, invitee, now)

    expected_doc, expected_update, expected_result = old_path(doc, name, actor, payload, ctx)
    new_doc, update, result = new_path(doc, name, actor, payload, ctx)

    assert update == expected_update
    for operator in expected_update:  # the same paths in the same order
        assert list(update[operator]) == list(expected_update[operator])
    assert new_doc == expected_doc and list(new_doc) == list(expected_doc)
    assert result == expected_result
    assert doc == kept, "the document read must not change"
    # the store's incremental size is the full encode's, exactly
    assert size_after(doc, bson_size(doc), update) == len(bson.encode(new_doc))


def test_an_action_leaves_its_input_collaboration_as_it_was(realistic):
    doc = copy.deepcopy(realistic)
    for name, actor, raw, invitee in cases(doc):
        collab = from_doc(doc, Collaboration)
        before = to_doc(copy.deepcopy(collab))
        payload = payloads.decode(CATALOGUE[name].payload, raw)
        effects.apply(name, collab, payload, _context(name, collab, actor, payload, invitee, NOW))
        assert to_doc(collab) == before, name


def test_a_path_through_a_missing_field_falls_back_to_the_full_diff():
    old = {"l": [0], "s": "text"}
    new, update = build_update(old, {"a.b": 1, "l.1": 2})
    assert update == {"$set": {"l.1": 2, "a": {"b": 1}}} == update_for(old, new)
    assert new == {"l": [0, 2], "s": "text", "a": {"b": 1}} and old == {"l": [0], "s": "text"}


@pytest.mark.parametrize("changes", [{"s.x": 1}, {"l.5": 1}, {"l.x": 1}])
def test_a_path_it_cannot_set_is_refused(changes):
    with pytest.raises(ValueError):
        build_update({"l": [0], "s": "text"}, changes)


@pytest.mark.parametrize(
    "update",
    [
        {"$set": {"t": "longer text"}},
        {"$set": {"n": 2**40}},
        {"$unset": {"t": ""}},
        {"$unset": {"missing": ""}},
        {"$set": {"l.2": {"x": [1, 2]}, "l.3": "y"}},
        {"$set": {"l.0": None}},
        {"$unset": {"l.1": ""}},
        {"$set": {"d.k": datetime(2026, 1, 1, tzinfo=timezone.utc), "d.new": True}},
        {"$set": {"l": []}},
        {"$set": {"new": {"deep": ["é" * 3]}}},
    ],
)
def test_the_size_after_an_update_is_the_encoded_size(update):
    from backend.domain.diff import apply_update

    doc = {"_id": "c", "t": "text", "n": 1, "l": ["a", {"b": 1}], "d": {"k": datetime(2025, 1, 1)}}
    after = apply_update(doc, update)
    if "$unset" in update and "l.1" in update["$unset"]:
        after["l"][1] = None  # MongoDB's $unset of an array element leaves null
    assert size_after(doc, bson_size(doc), update) == bson_size(after)


@pytest.mark.parametrize(
    "update",
    [
        {"$inc": {"n": 1}},
        {"$set": {"l.5": 1}},
        {"$set": {"missing.x": 1}},
        {"$set": {"t.x": 1}},
        {"$set": {"l.a": 1}},
    ],
)
def test_the_size_after_an_update_it_cannot_follow_is_unknown(update):
    doc = {"_id": "c", "t": "text", "n": 1, "l": ["a"]}
    assert size_after(doc, bson_size(doc), update) is None


async def test_the_cap_is_checked_from_the_update_and_refuses_exactly_past_it():
    runtime = await open_runtime(max_document_bytes=100_000)
    try:
        store, engine, owner = runtime.store.collaborations, runtime.engine, user(OWNER)
        cid = (
            await engine.run("createCollaboration", owner, None, {"title": "Team"}, actor_email=OWNER)
        ).collaborationId
        await engine.run("updateDetails", owner, cid, {"description": "x"})
        size = bson_size(await store.get(cid))
        assert store._sizes[cid] == (2, size)  # remembered from the write: the next check encodes nothing
        store._cap = size + 10 - 1  # a description 10 bytes longer is one byte too many
        with pytest.raises(DocumentTooLarge) as info:
            await engine.run("updateDetails", owner, cid, {"description": "x" * 11})
        assert info.value.details == {"size": size + 10, "limit": size + 9}
        store._cap = size + 10
        await engine.run("updateDetails", owner, cid, {"description": "x" * 11})
        assert bson_size(await store.get(cid)) == size + 10 and store._sizes[cid] == (3, size + 10)
    finally:
        await runtime.close()


async def test_the_size_remembered_after_each_write_is_the_stored_documents(any_store_handle):
    """Through the real store (and real MongoDB when MONGODB_URI is set): after every kind of write
    the size the store remembers for the new version is the stored document's, encoded in full."""
    runtime = Runtime(test_settings(), any_store_handle)
    try:
        await sign_in(runtime, OWNER, "b@example.com")
        store, engine, owner = runtime.store.collaborations, runtime.engine, user(OWNER)
        cid = (
            await engine.run("createCollaboration", owner, None, {"title": "Team"}, actor_email=OWNER)
        ).collaborationId

        async def check() -> None:
            doc = await store.get(cid)
            assert store._sizes[cid] == (doc["version"], bson_size(doc))

        await check()
        for email in ("b@example.com", "invited@example.com"):
            await engine.run("addMember", owner, cid, {"email": email, "role": "editor"})
            await check()
        other = user("b@example.com")
        act = (await engine.run("proposeActivity", other, cid, {"title": "Hike", "description": "é" * 40})).result[
            "activityId"
        ]
        await check()
        steps = [
            ("updateDetails", {"title": "T", "description": "Longer description " * 5}),
            ("scheduleActivity", {"activityId": act, "scheduledFor": "2026-12-24T10:00:00Z"}),
            ("completeActivity", {"activityId": act}),
            ("changeRole", {"userId": other.id, "role": "viewer"}),
            ("setProtectedActions", {"actions": ["addMember", "cancelActivity", "removeMember"]}),
            ("addRule", {"rule": THANK_YOU}),
            ("removeMember", {"userId": other.id}),
            ("setProtectedActions", {"actions": []}),
            ("forget", {}),  # forgotten (another process wrote, or too many): encoded once, then known
            ("updateDetails", {"description": "again"}),
            ("archiveCollaboration", {}),
        ]
        for name, payload in steps:
            if name == "forget":
                store._sizes.clear()
                continue
            await engine.run(name, owner, cid, payload)
            await check()
    finally:
        await runtime.verifier.aclose()
        await runtime.directory.aclose()


def test_the_engines_read_is_from_docs_member_for_member(realistic):
    """read_collaboration (the engine's read) converts members only as they are read (models.Members):
    whatever is read of it is what from_doc makes, and it encodes back to the same document."""
    doc = copy.deepcopy(realistic)
    kept = copy.deepcopy(doc)
    strict = from_doc(doc, Collaboration)
    read = read_collaboration(doc)
    assert isinstance(read.members, Members)
    for member in strict.members + [None]:
        user_id = member.userId if member is not None else "nobody"
        assert read.member(user_id) == strict.member(user_id)
    assert read.members._made.count(None) == MEMBERS - len(strict.members), "only the members found"
    assert len(read.members) == MEMBERS and read.members[3] == strict.members[3]
    assert read.members[-1] == strict.members[-1] and read.members[2:5] == strict.members[2:5]
    assert list(read.members) == strict.members and [*read.members] == strict.members
    assert read == strict and to_doc(read) == to_doc(strict) == to_doc(copy.deepcopy(read))
    assert doc == kept, "the document read must not change"


def test_the_engines_read_finds_the_first_member_without_converting_the_others():
    doc = copy.deepcopy(_small_doc())
    doc["members"][2]["role"] = "no such role"  # refused when read, not before
    read = read_collaboration(doc)
    assert read.member("u1") == Member(userId="u1", email=None, role="editor", joinedAt=NOW)
    assert read.members._made == [None, read.member("u1"), None]
    with pytest.raises(msgspec.ValidationError, match=r"at `\$\.members\[2\]\.role`"):  # where, as from_doc says
        read.member("u2")
    with pytest.raises(msgspec.ValidationError, match=r"at `\$\.members\[2\]\.role`"):
        list(read.members)
    with pytest.raises(msgspec.ValidationError):
        to_doc(read)


@pytest.mark.parametrize(
    "members", [{"u0": 1}, None, [{"userId": "u0"}], ["u0"]], ids=["an object", "null", "a field missing", "a string"]
)
def test_the_engines_read_refuses_what_from_doc_refuses(members):
    doc = {**_small_doc(), "members": members}
    with pytest.raises(msgspec.ValidationError):
        from_doc(doc, Collaboration)
    with pytest.raises(msgspec.ValidationError):
        read_collaboration(doc).member("u0")


def _small_doc() -> dict[str, Any]:
    owner = {"userId": "u0", "email": "o@example.com", "role": "owner", "joinedAt": NOW}
    return {
        "_id": "col_x",
        "title": "T",
        "description": None,
        "status": "active",
        "members": [owner, {**owner, "userId": "u1", "email": None, "role": "editor"}, {**owner, "userId": "u2"}],
        "memberIds": ["u0", "u1", "u2"],
        "activities": [],
        "settings": {"protectedActions": []},
        "rules": [],
        "version": 1,
        "createdAt": NOW,
        "updatedAt": NOW,
        "lastActivityAt": NOW,
    }


def test_a_value_the_encoder_does_not_know_is_a_type_error_as_msgspecs_own():
    """to_doc's hook (for a lazily read member list) leaves every other type to fail as msgspec
    fails it: a TypeError, not a NotImplementedError (the base of EmbeddedUnsupported)."""
    doc = copy.deepcopy(_small_doc())
    read = read_collaboration(doc)
    odd = msgspec.structs.replace(read, rules=[{"when": object()}])
    with pytest.raises(TypeError, match="Encoding objects of type object is unsupported"):
        to_doc(odd)
