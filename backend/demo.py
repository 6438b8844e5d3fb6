"""Demo data for `tandem dev`: two people, one collaboration with a little history.

Everything goes through the action engine, with a clock set back where the
story needs the past (an activity proposed three days ago, one scheduled for
nine days ago), so the offline AI has something to remind and to propose.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from backend.auth.dev_tokens import dev_user_id
from backend.clock import utcnow
from backend.domain.models import Actor
from backend.engine import ActionEngine, Applied

if TYPE_CHECKING:
    from backend.runtime import Runtime

ALICE = "alice@example.com"
BOB = "bob@example.com"


async def seed(runtime: Runtime) -> dict[str, Any]:
    alice = Actor.user(dev_user_id(ALICE))
    bob = Actor.user(dev_user_id(BOB))
    now = utcnow()
    for email in (ALICE, BOB):  # the demo people have signed in before: Bob joins as a member, not an invitee
        await runtime.directory.signed_in(dev_user_id(email), email)
    past = ActionEngine(runtime.store, runtime.settings, runtime.directory, clock=lambda: now - timedelta(days=10))
    engine = runtime.engine
    created = await past.run(
        "createCollaboration",
        alice,
        None,
        {"title": "Weekend in the mountains", "description": "Plan the trip together: dates, food, gear."},
        actor_email=ALICE,
    )
    assert isinstance(created, Applied)  # a new collaboration has no rules to hold anything
    cid = created.collaborationId
    await past.run("addMember", alice, cid, {"email": BOB, "role": "editor"})
    old = ActionEngine(runtime.store, runtime.settings, runtime.directory, clock=lambda: now - timedelta(days=3))
    await old.run("proposeActivity", bob, cid, {"title": "Book the mountain hut"})
    gear = await past.run("proposeActivity", alice, cid, {"title": "Check the tent and stove"})
    assert isinstance(gear, Applied)  # the demo has no rules
    await past.run(
        "scheduleActivity",
        alice,
        cid,
        {"activityId": gear.result["activityId"], "scheduledFor": (now - timedelta(days=9)).isoformat()},
    )
    await engine.run(
        "proposeActivity", alice, cid, {"title": "Pack the food", "dueAt": (now + timedelta(days=5)).isoformat()}
    )
    await engine.run("sendMessage", alice, cid, {"text": "Welcome! Add ideas as activities."})
    await engine.run("sendMessage", bob, cid, {"text": "I'll look for a hut that takes groups."})
    return {"collaborationId": cid, "users": [ALICE, BOB]}
