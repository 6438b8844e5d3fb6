"""Pure domain pieces: the document diff and payload validation."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from backend.domain import payloads
from backend.domain.diff import apply_update, update_for
from backend.errors import ValidationFailed


def test_diff_sets_nested_paths_and_appends_array_elements():
    old = {"a": 1, "items": [{"s": "x"}, {"s": "y"}], "m": {"k": 1}}
    new = copy.deepcopy(old)
    new["items"][1]["s"] = "z"
    new["items"].append({"s": "w"})
    new["m"]["j"] = 2
    update = update_for(old, new)
    assert update == {"$set": {"items.1.s": "z", "items.2": {"s": "w"}, "m.j": 2}}
    assert apply_update(old, update) == new


def test_diff_sets_a_shrunk_array_whole_and_unsets_removed_keys():
    old = {"members": [1, 2, 3], "gone": True, "keep": "k"}
    new = {"members": [1, 3], "keep": "k"}
    update = update_for(old, new)
    assert update == {"$set": {"members": [1, 3]}, "$unset": {"gone": ""}}
    assert apply_update(old, update) == new


def test_diff_tells_bool_from_int():
    assert update_for({"x": 1}, {"x": True}) == {"$set": {"x": True}}
    assert update_for({"x": 1}, {"x": 1}) == {}


@pytest.mark.parametrize(
    "kind, raw, path",
    [
        (payloads.CreateCollaboration, {}, "payload.title"),
        (payloads.ScheduleActivity, {"activityId": "a"}, "payload.scheduledFor"),
        (payloads.CreateCollaboration, {"title": 5}, "payload.title"),
        (payloads.CreateCollaboration, {"title": "  "}, "payload.title"),
        (payloads.CreateCollaboration, {"title": "x" * 201}, "payload.title"),
        (payloads.CreateCollaboration, {"title": "ok", "owner": "me"}, "payload.owner"),
        (payloads.ScheduleActivity, {"activityId": "a", "scheduledFor": "tomorrow"}, "payload.scheduledFor"),
        (payloads.ScheduleActivity, {"activityId": "a", "scheduledFor": "2026-01-01T10:00:00"}, "payload.scheduledFor"),
        (payloads.AddMember, {"email": "not-an-email", "role": "editor"}, "payload.email"),
        (payloads.AddMember, {"email": "a@b.co", "role": "king"}, "payload.role"),
        (payloads.SetProtectedActions, {"actions": ["a", 1]}, "payload.actions.1"),
        (payloads.UpdateDetails, {}, "payload"),
        (payloads.SendMessage, {"text": ""}, "payload.text"),
        (payloads.SendMessage, {"text": "x" * 4001}, "payload.text"),
    ],
)
def test_bad_payloads_name_the_failing_field(kind, raw, path):
    with pytest.raises(ValidationFailed) as info:
        payloads.decode(kind, raw)
    assert info.value.fields[0]["path"] == path


def test_payload_must_be_an_object():
    with pytest.raises(ValidationFailed):
        payloads.decode(payloads.SendMessage, ["text"])


def test_a_stored_time_decodes_again():
    """An approval keeps its payload's times as datetimes (as stored by MongoDB); carrying it out decodes them."""
    stored = datetime(2026, 11, 23, 8, 0, tzinfo=timezone(timedelta(0)))
    decoded = payloads.decode(payloads.ScheduleActivity, {"activityId": "act_1", "scheduledFor": stored})
    assert decoded.scheduledFor == stored and decoded.scheduledFor.tzinfo is timezone.utc
