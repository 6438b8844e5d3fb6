"""backend.auth against real keys and a real JWKS / admin server on 127.0.0.1.

Accepted tokens, the JWKS cache, dev tokens, the member directory and invitations.
The refusals (forged, confused, expired, foreign tokens) are in tests/test_security_tokens.py.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from backend.auth import MemberDirectory, TokenVerifier, dev_user_id, issue_dev_token
from backend.auth.jwks import KEYS_UNAVAILABLE, UNKNOWN_KEY, parse_jwks
from backend.domain.models import Actor
from backend.errors import ServiceUnavailable, ValidationFailed
from backend.runtime import Runtime
from backend.settings import load_settings
from backend.settings import test_settings as dev_settings
from tests.auth_keys import (
    EC,
    ROTATED_RSA,
    RSA,
    SECRET,
    SERVICE_KEY,
    Clock,
    claims,
    closed_port_url,
    ec_key,
    gotrue_user,
    public_jwk,
    refused,
    sign,
    supabase_settings,
)
from tests.realtime_support import Client, live_server
from tests.support import EDITOR, OWNER, VIEWER, user

# --- accepted tokens -------------------------------------------------------------------------------


async def test_hs256_token_is_accepted(server, make_verifier):
    verifier = make_verifier(supabase_settings(server))
    payload = claims(server.url + "/auth/v1")
    principal = await verifier.verify(sign(payload, SECRET, "HS256"))
    assert principal.id == payload["sub"] and principal.email == "ada@example.com"
    assert principal.expires_at == datetime.fromtimestamp(payload["exp"], timezone.utc)
    assert principal.claims["role"] == "authenticated"
    assert server.jwks_hits == 0  # HS256 never needs the JWKS


@pytest.mark.parametrize("key, alg, kid", [(RSA, "RS256", "rsa-1"), (EC, "ES256", "ec-1")])
async def test_asymmetric_token_is_verified_against_the_jwks(server, key, alg, kid):
    async with httpx.AsyncClient() as http:
        verifier = TokenVerifier(supabase_settings(server, supabase_jwt_secret=None), http)
        principal = await verifier.verify(sign(claims(server.url + "/auth/v1"), key, alg, kid))
        again = await verifier.verify(sign(claims(server.url + "/auth/v1", sub="other"), key, alg, kid))
    assert (principal.email, again.id) == ("ada@example.com", "other")
    assert server.jwks_hits == 1  # cached


async def test_verifier_without_a_client_makes_and_closes_its_own(server):
    verifier = TokenVerifier(supabase_settings(server))
    principal = await verifier.verify(sign(claims(server.url + "/auth/v1"), EC, "ES256", "ec-1"))
    await verifier.aclose()
    assert principal.id and server.jwks_hits == 1


async def test_small_clock_skew_is_tolerated(server, make_verifier):
    verifier = make_verifier(supabase_settings(server))
    now = int(time.time())
    token = sign(claims(server.url + "/auth/v1", exp=now - 5, iat=now + 5), SECRET, "HS256")
    assert (await verifier.verify(token)).id


async def test_email_is_optional(server, make_verifier):
    verifier = make_verifier(supabase_settings(server))
    principal = await verifier.verify(sign(claims(server.url + "/auth/v1", email=""), SECRET, "HS256"))
    assert principal.email is None


def test_parse_jwks_keeps_only_rsa_and_p256_signing_keys():
    p384 = public_jwk(ec_key(), "x")  # relabelled below
    document = {
        "keys": [
            public_jwk(RSA, "rsa"),
            public_jwk(EC, "ec"),
            {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"},
            {**public_jwk(RSA, "enc"), "use": "enc"},
            {**public_jwk(RSA, "mislabelled"), "alg": "HS256"},
            {**p384, "kid": "p384", "crv": "P-384", "alg": "ES384"},
            {**public_jwk(RSA, "x"), "kid": None},
            "junk",
        ]
    }
    keys = parse_jwks(document)
    assert {kid: key.algorithm_name for kid, key in keys.items()} == {"rsa": "RS256", "ec": "ES256"}
    with pytest.raises(ValueError):
        parse_jwks(["not", "a", "jwks"])


# --- key rotation and refetch limits ---------------------------------------------------------------


async def test_unknown_kid_refetches_the_jwks(server, make_verifier):
    clock = Clock()
    verifier = make_verifier(supabase_settings(server, supabase_jwt_secret=None), clock)
    iss = server.url + "/auth/v1"
    assert (await verifier.verify(sign(claims(iss), RSA, "RS256", "rsa-1"))).id
    server.keys = [public_jwk(ROTATED_RSA, "rsa-2")]  # the project rotates its signing key
    clock.advance(31)
    assert (await verifier.verify(sign(claims(iss), ROTATED_RSA, "RS256", "rsa-2"))).id
    assert server.jwks_hits == 2
    # the old key left the JWKS, so it left the cache too
    assert await refused(verifier, sign(claims(iss), RSA, "RS256", "rsa-1")) == UNKNOWN_KEY


async def test_unknown_kids_refetch_at_most_every_30_seconds(server, make_verifier):
    clock = Clock()
    verifier = make_verifier(supabase_settings(server), clock)
    iss = server.url + "/auth/v1"
    for _ in range(5):
        assert await refused(verifier, sign(claims(iss), RSA, "RS256", "made-up")) == UNKNOWN_KEY
    assert server.jwks_hits == 1
    server.keys.append(public_jwk(ROTATED_RSA, "rsa-2"))
    clock.advance(10)
    assert await refused(verifier, sign(claims(iss), ROTATED_RSA, "RS256", "rsa-2")) == UNKNOWN_KEY
    assert server.jwks_hits == 1
    clock.advance(21)
    assert (await verifier.verify(sign(claims(iss), ROTATED_RSA, "RS256", "rsa-2"))).id
    assert server.jwks_hits == 2


async def test_a_key_removed_from_the_jwks_stops_working_after_max_age(server, make_verifier):
    clock = Clock()
    verifier = make_verifier(supabase_settings(server), clock)
    token = sign(claims(server.url + "/auth/v1"), RSA, "RS256", "rsa-1")
    assert (await verifier.verify(token)).id
    server.keys = [public_jwk(EC, "ec-1")]  # rsa-1 revoked
    clock.advance(599)
    assert (await verifier.verify(token)).id and server.jwks_hits == 1
    clock.advance(1)
    assert await refused(verifier, token) == UNKNOWN_KEY
    assert server.jwks_hits == 2


async def test_cached_keys_survive_a_failed_refetch(server, make_verifier):
    clock = Clock()
    verifier = make_verifier(supabase_settings(server), clock)
    token = sign(claims(server.url + "/auth/v1"), EC, "ES256", "ec-1")
    assert (await verifier.verify(token)).id
    server.jwks_status = 500
    clock.advance(601)
    assert (await verifier.verify(token)).id
    assert server.jwks_hits == 2


async def test_unreachable_jwks_is_unavailable_not_unauthenticated(make_verifier):
    url = closed_port_url()
    settings = load_settings(
        {}, auth_mode="supabase", supabase_jwks_url=url, jwt_issuer="https://p.supabase.co/auth/v1"
    )
    verifier = make_verifier(settings)
    with pytest.raises(ServiceUnavailable) as info:
        await verifier.verify(sign(claims(settings.issuer), RSA, "RS256", "rsa-1"))
    assert info.value.message == KEYS_UNAVAILABLE


# --- dev tokens ------------------------------------------------------------------------------------


async def test_dev_token_round_trip():
    settings = dev_settings()
    issued = issue_dev_token(settings, "  Ada@Example.COM ")
    assert issued["token_type"] == "bearer" and issued["expires_in"] == settings.dev_token_ttl
    assert issued["user"] == {"id": dev_user_id("ada@example.com"), "email": "ada@example.com"}
    principal = await TokenVerifier(settings).verify(issued["access_token"])
    assert (principal.id, principal.email) == (issued["user"]["id"], "ada@example.com")
    expected_expiry = datetime.now(timezone.utc) + timedelta(seconds=settings.dev_token_ttl)
    assert abs(principal.expires_at - expected_expiry) < timedelta(seconds=5)
    c = principal.claims
    assert (c["aud"], c["role"], c["iss"], c["app_metadata"]["provider"], c["user_metadata"]) == (
        "authenticated",
        "authenticated",
        "tandem-dev",
        "email",
        {},
    )
    assert c["session_id"] and c["exp"] - c["iat"] == settings.dev_token_ttl


def test_dev_user_ids_are_stable_uuids():
    first = issue_dev_token(dev_settings(), "grace@example.com")["user"]["id"]
    after_restart = issue_dev_token(dev_settings(), "GRACE@example.com")["user"]["id"]
    assert first == after_restart == dev_user_id(" Grace@Example.com")
    assert uuid.UUID(first).version == 5
    assert dev_user_id("ada@example.com") != first


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "a b@example.com",
        "ada@exa mple.com",
        "ada@@example.com",
        "ada@example..com",
        "x" * 250 + "@e.io",
        None,
        42,
    ],
)
def test_dev_login_refuses_a_bad_email(email):
    with pytest.raises(ValidationFailed) as info:
        issue_dev_token(dev_settings(), email)
    assert [f["path"] for f in info.value.fields] == ["email"]


# --- member directory: addMember invites, in at most two directory calls -----------------------------


async def test_directory_in_dev_mode_creates_the_user_with_the_id_of_the_later_sign_in():
    runtime = await Runtime.open(dev_settings())
    try:
        directory = runtime.directory
        first = await directory.find_or_invite("Lin@Example.com")
        signed_in = issue_dev_token(dev_settings(), "lin@example.com")["user"]
        assert (
            (first.id, first.email)
            == (signed_in["id"], signed_in["email"])
            == (dev_user_id("lin@example.com"), "lin@example.com")
        )
        assert first.invited  # never signed in: created, as an invitation
        assert (await directory.find_or_invite("lin@example.com")).invited  # still has not signed in
        await directory.signed_in(first.id, "lin@example.com")
        assert not (await directory.find_or_invite("LIN@example.com")).invited
        with pytest.raises(ValidationFailed) as info:
            await directory.find_or_invite("not an email")
        assert info.value.fields[0]["path"] == "payload.email"  # it answers addMember's payload
    finally:
        await runtime.close()


@pytest.mark.parametrize("email", ["a@b..com", "a@b.c.", "a<b@example.com"])
async def test_add_member_with_an_email_the_directory_refuses_names_payload_email(email):
    """The payload's looser check lets these through; the directory's refusal still names the payload field."""
    runtime = await Runtime.open(dev_settings())
    try:
        cid = (
            await runtime.engine.run("createCollaboration", user(OWNER), None, {"title": "T"}, actor_email=OWNER)
        ).collaborationId
        with pytest.raises(ValidationFailed) as info:
            await runtime.engine.run("addMember", user(OWNER), cid, {"email": email, "role": "editor"})
        assert [f["path"] for f in info.value.fields] == ["payload.email"]
    finally:
        await runtime.close()


async def test_directory_in_supabase_mode_needs_the_service_key(server):
    with pytest.raises(ValidationFailed) as info:
        await MemberDirectory(supabase_settings(server)).find_or_invite("ada@example.com")
    assert "SUPABASE_SERVICE_KEY" in info.value.message and info.value.fields[0]["path"] == "payload.email"
    assert server.admin_requests == []


async def test_directory_in_supabase_mode_invites_first_and_looks_up_only_existing_accounts(server):
    server.add_users(5)
    server.users["pending@example.com"] = gotrue_user(str(uuid.uuid4()), "pending@example.com", confirmed=False)
    directory = MemberDirectory(supabase_settings(server, supabase_service_key=SERVICE_KEY))
    try:
        known = await directory.find_or_invite("USER4@example.com")
        assert (known.id, known.email, known.invited) == (str(uuid.UUID(int=5)), "user4@example.com", False)
        assert [path for path, _, _ in server.admin_requests] == ["/auth/v1/invite", "/auth/v1/admin/generate_link"]
        _, headers, body = server.admin_requests[-1]
        assert headers["apikey"] == SERVICE_KEY and headers["authorization"] == f"Bearer {SERVICE_KEY}"
        assert body["type"] == "magiclink" and body["email"] == "user4@example.com"
        assert server.invitations_sent == []  # an account holder gets no email

        server.admin_requests.clear()
        new = await directory.find_or_invite("newcomer@example.com")
        assert new.invited and new.id == server.users["newcomer@example.com"]["id"]
        assert [path for path, _, _ in server.admin_requests] == ["/auth/v1/invite"]  # one call
        again = await directory.find_or_invite("pending@example.com")  # invited before, never confirmed
        assert again.invited and again.id == server.users["pending@example.com"]["id"]
        assert server.invitations_sent == ["newcomer@example.com", "pending@example.com"]

        server.admin_status = 500
        with pytest.raises(ServiceUnavailable):
            await directory.find_or_invite("user0@example.com")
        with pytest.raises(ServiceUnavailable):
            await directory.find_or_invite("someone-new@example.com")  # the same failure either way
    finally:
        await directory.aclose()


async def test_supabases_email_rate_limit_does_not_tell_new_emails_apart(server):
    """Past Supabase's email limit the invitation fails for new emails only: it must still answer alike."""
    server.add_users(3)
    server.mail_limited = True
    directory = MemberDirectory(supabase_settings(server, supabase_service_key=SERVICE_KEY))
    try:
        new = await directory.find_or_invite("newcomer@example.com")
        assert new.invited and new.id == server.users["newcomer@example.com"]["id"]  # created, no email
        assert [path for path, _, _ in server.admin_requests] == ["/auth/v1/invite", "/auth/v1/admin/generate_link"]
        assert server.admin_requests[-1][2]["type"] == "invite" and server.invitations_sent == []
        known = await directory.find_or_invite("user1@example.com")
        assert not known.invited and known.id == str(uuid.UUID(int=2))
    finally:
        await directory.aclose()


# --- addMember over HTTP in supabase mode: no enumeration, no amplification, invitations ------------

OWNER_SUB = "0f0f0f0f-1111-4222-8333-444455556666"


def supabase_token(server, sub: str, email: str) -> str:
    return sign(claims(server.url + "/auth/v1", sub=sub, email=email), SECRET, "HS256")


@pytest.fixture
async def supabase_live(server):
    settings = dict(
        auth_mode="supabase", supabase_url=server.url, supabase_jwt_secret=SECRET, supabase_service_key=SERVICE_KEY
    )
    async with live_server(**settings) as live:
        live.bearer = lambda sub, email: {"authorization": f"Bearer {supabase_token(server, sub, email)}"}
        yield live


def _without_ids(answer: dict, user_id: str) -> bytes:
    return json.dumps(answer, sort_keys=True).replace(user_id, "<id>").encode()


async def test_add_member_answers_alike_for_known_and_unknown_emails_in_at_most_two_calls(server, supabase_live):
    live, owner = supabase_live, supabase_live.bearer(OWNER_SUB, "owner@example.com")
    server.add_users(100_000)  # a big project: the old look-up paged through all of them
    r = await live.http.post("/api/collaborations", json={"title": "Trip"}, headers=owner)
    cid = r.json()["id"]
    watcher = await Client.open(live.ws_url)  # what every member sees as it happens
    await watcher.auth(supabase_token(server, OWNER_SUB, "owner@example.com"))
    await watcher.subscribe(cid)
    await watcher.expect("snapshot")
    answers, added = {}, {}
    for email in ("user99999@example.com", "nobody@example.com"):
        server.admin_requests.clear()
        r = await live.http.post(
            "/api/actions/addMember",
            headers=owner,
            json={"collaborationId": cid, "payload": {"email": email, "role": "viewer"}},
        )
        assert r.status_code == 200, r.text
        assert len(server.admin_requests) <= 2, server.admin_requests
        answers[email] = r.json()
        event = await watcher.until("collaboration_updated")
        added[email] = next(
            v for v in event["changes"]["updatedFields"].values() if isinstance(v, dict) and v.get("email") == email
        )
    known, unknown = answers["user99999@example.com"], answers["nobody@example.com"]
    assert known["result"]["userId"] == str(uuid.UUID(int=100_000))
    assert unknown["result"]["userId"] == server.users["nobody@example.com"]["id"]
    # the same bytes apart from the ids (and the version, one higher for the second)
    known["version"] = unknown["version"]
    assert _without_ids(known, known["result"]["userId"]) == _without_ids(unknown, unknown["result"]["userId"])
    assert server.invitations_sent == ["nobody@example.com"]

    # Both entries alike, in the snapshot and in collaboration_updated: both marked invited by the owner
    # (an entry that told who has an account would let anyone add an email, read it, remove it).
    snapshot = (await live.http.get(f"/api/collaborations/{cid}", headers=owner)).json()
    entries = {m["email"]: m for m in snapshot["members"]}
    for email in answers:
        for entry in (entries[email], added[email]):
            assert sorted(entry) == ["email", "invitedAt", "invitedBy", "joinedAt", "role", "userId"], entry
            assert entry["invitedBy"] == OWNER_SUB and entry["invitedAt"] == entry["joinedAt"]
    await watcher.close()


async def test_an_invited_members_first_sign_in_clears_the_invitation_for_every_subscriber(server, supabase_live):
    live, owner = supabase_live, supabase_live.bearer(OWNER_SUB, "owner@example.com")
    r = await live.http.post("/api/collaborations", json={"title": "Trip"}, headers=owner)
    cid = r.json()["id"]
    added = await live.http.post(
        "/api/actions/addMember",
        headers=owner,
        json={"collaborationId": cid, "payload": {"email": "lin@example.com", "role": "editor"}},
    )
    lin_id, version = added.json()["result"]["userId"], added.json()["version"]
    watcher = await Client.open(live.ws_url)
    await watcher.auth(supabase_token(server, OWNER_SUB, "owner@example.com"))
    await watcher.subscribe(cid)
    await watcher.expect("snapshot")

    lin = live.bearer(lin_id, "lin@example.com")  # Lin accepted the invitation and signs in
    mine = (await live.http.get("/api/collaborations", headers=lin)).json()
    event = await watcher.until("collaboration_updated")
    assert (event["version"], event["action"], event["actor"]) == (
        version + 1,
        "acceptInvitation",
        {"type": "user", "id": lin_id},
    )
    assert sorted(event["changes"]["removedFields"]) == ["members.1.invitedAt", "members.1.invitedBy"]
    snapshot = (await live.http.get(f"/api/collaborations/{cid}", headers=lin)).json()
    assert snapshot["version"] == version + 1
    assert {k for k in snapshot["members"][1]} == {"userId", "email", "role", "joinedAt"}
    assert [c["id"] for c in mine["collaborations"]] == [cid]
    entries = (await live.http.get(f"/api/collaborations/{cid}/audit", headers=owner)).json()["entries"]
    assert any(e["action"] == "acceptInvitation" and e["version"] == version + 1 for e in entries), entries
    # later requests cost nothing more: no new version
    await live.http.get("/api/me", headers=lin)
    assert (await live.http.get(f"/api/collaborations/{cid}", headers=lin)).json()["version"] == version + 1
    assert await watcher.quiet(0.2) == []
    await watcher.close()


async def test_an_ai_proposal_to_add_a_member_invites_no_one_until_approved(server, supabase_live):
    live, owner = supabase_live, supabase_live.bearer(OWNER_SUB, "owner@example.com")
    cid = (await live.http.post("/api/collaborations", json={"title": "Trip"}, headers=owner)).json()["id"]
    outcome = await live.runtime.engine.run(
        "addMember", Actor.ai("run_1"), cid, {"email": "cy@example.com", "role": "viewer"}
    )
    assert outcome.approval["status"] == "pending"
    assert server.admin_requests == [] and server.invitations_sent == []
    r = await live.http.post(f"/api/approvals/{outcome.approval['_id']}/approve", headers=owner)
    assert r.status_code == 200, r.text
    assert server.invitations_sent == ["cy@example.com"]
    members = (await live.http.get(f"/api/collaborations/{cid}", headers=owner)).json()["members"]
    assert members[1]["invitedBy"] == OWNER_SUB  # the owner who approved it


async def test_add_member_counts_double_against_the_action_rate_limit():
    async with live_server(action_rate_limit=4, action_rate_window=3600) as live:
        cid = await live.create(OWNER)  # one token
        assert (await live.act(OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"}))["version"] == 2
        body = {"collaborationId": cid, "payload": {"email": VIEWER, "role": "viewer"}}
        r = await live.http.post("/api/actions/addMember", json=body, headers=live.auth(OWNER))
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"  # 1 token left, 2 needed
        await live.act(OWNER, "sendMessage", cid, {"text": "one token is enough for this"})


async def test_sign_ins_are_checked_once_per_user_per_process_window(any_store_handle):
    """The per-request cost: after a user's first request, a dict look-up until `recheck_after` passes.
    On the embedded store and on real MongoDB (the $elemMatch query, the dev_users upsert)."""
    from backend.auth.invitations import Invitations

    runtime = Runtime(dev_settings(), any_store_handle)
    try:
        engine = runtime.engine
        cid = (
            await engine.run("createCollaboration", user(OWNER), None, {"title": "T"}, actor_email=OWNER)
        ).collaborationId
        await engine.run("addMember", user(OWNER), cid, {"email": "lin@example.com", "role": "viewer"})
        lin = dev_user_id("lin@example.com")
        assert await runtime.store.collaborations.invited(lin) == [cid]
        clock = Clock()
        invitations = Invitations(runtime.store, monotonic=clock, recheck_after=600)
        await invitations.seen(lin)
        assert await runtime.store.collaborations.invited(lin) == []
        version = (await runtime.store.collaborations.get(cid))["version"]
        # a mark that appears later (another process added Lin meanwhile) waits for the next check
        await engine.run("removeMember", user(OWNER), cid, {"userId": lin})
        await engine.run("addMember", user(OWNER), cid, {"email": "lin@example.com", "role": "viewer"})
        clock.advance(599)
        await invitations.seen(lin)
        assert await runtime.store.collaborations.invited(lin) == [cid]
        clock.advance(1)
        await invitations.seen(lin)
        assert await runtime.store.collaborations.invited(lin) == []
        assert (await runtime.store.collaborations.get(cid))["version"] == version + 3
    finally:
        await runtime.verifier.aclose()
        await runtime.directory.aclose()


# --- review fixes: marks that do not tell, a throttled directory, retried clears ----------------------


async def test_a_user_this_process_checked_lately_is_checked_again_when_added(server, supabase_live):
    """The per-process cache must not keep an already-seen user from clearing a new invitation mark."""
    live, owner = supabase_live, supabase_live.bearer(OWNER_SUB, "owner@example.com")
    lin_id = "1a1a1a1a-2222-4333-8444-555566667777"
    lin = live.bearer(lin_id, "lin@example.com")
    assert (await live.http.get("/api/collaborations", headers=lin)).status_code == 200  # seen and cached
    cid = (await live.http.post("/api/collaborations", json={"title": "Trip"}, headers=owner)).json()["id"]
    added = await live.http.post(
        "/api/actions/addMember",
        headers=owner,
        json={"collaborationId": cid, "payload": {"email": "lin@example.com", "role": "viewer"}},
    )
    assert added.status_code == 200 and added.json()["result"]["userId"] == lin_id  # found locally
    assert server.admin_requests == []  # Lin signed in before: no call to Supabase at all
    members = (await live.http.get(f"/api/collaborations/{cid}", headers=owner)).json()["members"]
    assert members[1]["invitedBy"] == OWNER_SUB  # marked, like anyone added by email
    await live.http.get("/api/me", headers=lin)  # Lin's next request clears it, cache or not
    snapshot = (await live.http.get(f"/api/collaborations/{cid}", headers=owner)).json()
    assert "invitedAt" not in snapshot["members"][1] and snapshot["version"] == added.json()["version"] + 1


@pytest.mark.parametrize("kind", ["no account", "account never seen by Tandem", "signed in to Tandem"])
async def test_adding_and_removing_an_email_over_and_over_asks_the_directory_once(server, supabase_live, kind):
    """Each directory call for a confirmed account cancels their unused magic link, each invitation sends
    mail: ten add/remove cycles, by two owners, make at most one such call, and every answer is alike."""
    live = supabase_live
    owners = [
        live.bearer(OWNER_SUB, "owner@example.com"),
        live.bearer("2b2b2b2b-3333-4444-8555-666677778888", "other-owner@example.com"),
    ]
    server.add_users(3)
    email = {
        "no account": "nobody@example.com",
        "account never seen by Tandem": "user1@example.com",
        "signed in to Tandem": "user2@example.com",
    }[kind]
    if kind == "signed in to Tandem":
        await live.http.get("/api/me", headers=live.bearer(str(uuid.UUID(int=3)), email))
    cids = [(await live.http.post("/api/collaborations", json={"title": "T"}, headers=o)).json()["id"] for o in owners]
    shapes = set()
    for cycle in range(10):
        owner, cid = owners[cycle % 2], cids[cycle % 2]
        r = await live.http.post(
            "/api/actions/addMember",
            headers=owner,
            json={"collaborationId": cid, "payload": {"email": email, "role": "viewer"}},
        )
        assert r.status_code == 200, r.text
        user_id = r.json()["result"]["userId"]
        shapes.add(_without_ids({**r.json(), "version": 0, "collaborationId": "c"}, user_id))
        removed = await live.http.post(
            "/api/actions/removeMember", headers=owner, json={"collaborationId": cid, "payload": {"userId": user_id}}
        )
        assert removed.status_code == 200, removed.text
    assert len(shapes) == 1  # the same answer every time
    paths = [path for path, _, body in server.admin_requests]
    assert paths.count("/auth/v1/admin/generate_link") <= 1 and paths.count("/auth/v1/invite") <= 1, paths
    assert len(server.invitations_sent) <= 1
    expected = {
        "no account": ["/auth/v1/invite"],
        "signed in to Tandem": [],
        "account never seen by Tandem": ["/auth/v1/invite", "/auth/v1/admin/generate_link"],
    }[kind]
    assert paths == expected


async def test_the_directory_is_asked_once_per_email_per_ten_minutes_by_one_caller_at_a_time(server, any_store_handle):
    """A throttled email is answered alike: the stored answer, or 503 while another caller asks.
    On the embedded store and on real MongoDB (the claim's insert and conditional update)."""
    from backend.auth.directory import THROTTLED
    from backend.store.users import KnownUsers

    clock = Clock()
    users = KnownUsers(any_store_handle.db, clock=clock)
    directory = MemberDirectory(supabase_settings(server, supabase_service_key=SERVICE_KEY), users=users)
    server.add_users(2)
    try:
        first = await directory.find_or_invite("new@example.com")
        assert first.invited and server.invitations_sent == ["new@example.com"]
        clock.advance(599)
        assert await directory.find_or_invite("new@example.com") == first and directory.calls == 1
        clock.advance(1)  # ten minutes on, a pending invitation is asked again: the invitation goes again
        assert (await directory.find_or_invite("new@example.com")).id == first.id
        assert server.invitations_sent == ["new@example.com"] * 2 and directory.calls == 2

        account = await directory.find_or_invite("user1@example.com")  # a confirmed account: kept for good
        clock.advance(86_400)
        assert await directory.find_or_invite("user1@example.com") == account and directory.calls == 4

        # another caller holds the claim (asking right now): 503, the same for any email
        for email in ("user0@example.com", "someone@example.com"):
            assert await users.claim(email, None, clock())
            with pytest.raises(ServiceUnavailable) as info:
                await directory.find_or_invite(email)
            assert info.value.message == THROTTLED
        assert directory.calls == 4
        # a failed call releases its claim: the next add asks again at once
        server.admin_status = 500
        with pytest.raises(ServiceUnavailable) as info:
            await directory.find_or_invite("later@example.com")
        assert info.value.message != THROTTLED
        server.admin_status = 200
        assert (await directory.find_or_invite("later@example.com")).invited
    finally:
        await directory.aclose()


async def test_a_sign_in_is_recorded_once_per_process(server, supabase_live):
    live = supabase_live
    ada = live.bearer("3c3c3c3c-4444-4555-8666-777788889999", "Ada@Example.com")
    for _ in range(3):
        await live.http.get("/api/me", headers=ada)
    assert live.runtime.users.writes == 1
    assert await live.runtime.users.by_email("ada@example.com") == "3c3c3c3c-4444-4555-8666-777788889999"
    await live.http.get("/api/me", headers=live.bearer("3c3c3c3c-4444-4555-8666-777788889999", "ada@new.example"))
    assert live.runtime.users.writes == 2  # a changed email is recorded again
    assert await live.runtime.users.by_email("ada@new.example") == "3c3c3c3c-4444-4555-8666-777788889999"


async def test_a_clear_that_gave_up_is_tried_again_on_the_next_request():
    """accept() gives up after MAX_RETRIES lost races: the user must not be cached as checked."""
    from backend.auth import invitations as inv

    runtime = await Runtime.open(dev_settings())
    try:
        engine = runtime.engine
        cid = (
            await engine.run("createCollaboration", user(OWNER), None, {"title": "T"}, actor_email=OWNER)
        ).collaborationId
        await engine.run("addMember", user(OWNER), cid, {"email": "lin@example.com", "role": "viewer"})
        lin = dev_user_id("lin@example.com")
        invitations = inv.Invitations(runtime.store, monotonic=Clock(), recheck_after=600)
        collaborations = runtime.store.collaborations
        real_apply, races = collaborations.apply, {"left": inv.MAX_RETRIES, "racing": False}

        async def racing_apply(*args, **kwargs):  # a real concurrent change lands first, each time
            if races["left"] > 0 and not races["racing"]:
                races["left"] -= 1
                races["racing"] = True
                try:
                    await engine.run("updateDetails", user(OWNER), cid, {"title": f"T{races['left']}"})
                finally:
                    races["racing"] = False
            return await real_apply(*args, **kwargs)

        collaborations.apply = racing_apply
        await invitations.seen(lin)
        assert await collaborations.invited(lin) == [cid]  # it gave up
        await invitations.seen(lin)  # the next request, well within recheck_after
        assert await collaborations.invited(lin) == []
    finally:
        await runtime.close()
