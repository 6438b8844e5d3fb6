"""The REST API over real HTTP: a real uvicorn server on 127.0.0.1 and an HTTP client."""

from __future__ import annotations

import httpx
import pytest

from backend.composition import build_api
from backend.settings import test_settings
from tests.support import ACCOUNTS, EDITOR, OWNER, VIEWER, LiveServer, token


@pytest.fixture
async def api():
    settings = test_settings(action_rate_limit=1000, max_body_bytes=64 * 1024)
    async with LiveServer(build_api(settings), settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            client.settings = settings
            for email in ACCOUNTS:  # they have accounts: adding them invites no one
                assert (await client.post("/api/auth/dev-login", json={"email": email})).status_code == 200
            yield client


def auth(client, email):
    return {"authorization": f"Bearer {token(client.settings, email)}"}


async def create(api, email=OWNER, title="Trip"):
    r = await api.post("/api/collaborations", json={"title": title}, headers=auth(api, email))
    assert r.status_code == 201, r.text
    return r.json()


async def act(api, email, name, cid, payload=None, **extra):
    body = {"collaborationId": cid, "payload": payload or {}, **extra}
    return await api.post(f"/api/actions/{name}", json=body, headers=auth(api, email))


async def test_health_ready_and_metrics(api):
    assert (await api.get("/api/health")).json() == {"status": "ok"}
    ready = await api.get("/api/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["mongodb"] is True
    metrics = await api.get("/metrics")
    assert metrics.status_code == 200 and "tandem_http_requests_total" in metrics.text


async def test_dev_login_and_me(api):
    r = await api.post("/api/auth/dev-login", json={"email": "Alice@Example.com"})
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "bearer" and body["expires_in"] > 0
    me = await api.get("/api/me", headers={"authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {"id": body["user"]["id"], "email": "alice@example.com"}


async def test_requests_without_a_valid_token_are_refused(api):
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "Basic abc"}):
        r = await api.get("/api/collaborations", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


async def test_collaboration_walkthrough(api):
    col = await create(api)
    cid = col["id"]
    assert col["version"] == 1 and "_id" not in col and col["createdAt"].endswith("Z")
    r = await act(api, OWNER, "addMember", cid, {"email": EDITOR, "role": "editor"})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = await act(api, EDITOR, "proposeActivity", cid, {"title": "Hike", "dueAt": "2026-12-01T08:00:00Z"})
    activity_id = r.json()["result"]["activityId"]
    r = await act(
        api, EDITOR, "scheduleActivity", cid, {"activityId": activity_id, "scheduledFor": "2026-12-01T09:00:00+01:00"}
    )
    assert r.json()["version"] == 4
    snap = (await api.get(f"/api/collaborations/{cid}", headers=auth(api, EDITOR))).json()
    assert snap["activities"][0]["scheduledFor"] == "2026-12-01T08:00:00Z"
    for i in range(3):
        assert (await act(api, EDITOR, "sendMessage", cid, {"text": f"m{i}"})).status_code == 200
    page = (await api.get(f"/api/collaborations/{cid}/messages?limit=2", headers=auth(api, OWNER))).json()
    assert [m["text"] for m in page["messages"]] == ["m1", "m2"] and page["hasMore"] is True
    older = (
        await api.get(
            f"/api/collaborations/{cid}/messages?before={page['messages'][0]['id']}", headers=auth(api, OWNER)
        )
    ).json()
    assert [m["text"] for m in older["messages"]] == ["m0"]
    newer = (
        await api.get(
            f"/api/collaborations/{cid}/messages?after={older['messages'][0]['id']}", headers=auth(api, OWNER)
        )
    ).json()
    assert [m["text"] for m in newer["messages"]] == ["m1", "m2"]
    trail = (await api.get(f"/api/collaborations/{cid}/audit", headers=auth(api, EDITOR))).json()
    assert [e["action"] for e in trail["entries"]][:2] == ["sendMessage", "sendMessage"]
    mine = (await api.get("/api/collaborations", headers=auth(api, EDITOR))).json()["collaborations"]
    assert [c["id"] for c in mine] == [cid]


async def test_pages_say_has_more_only_when_there_is_more(api):
    cid = (await create(api))["id"]
    for i in range(4):
        assert (await act(api, OWNER, "sendMessage", cid, {"text": f"m{i}"})).status_code == 200
    base = f"/api/collaborations/{cid}"
    h = auth(api, OWNER)
    latest = (await api.get(f"{base}/messages?limit=4", headers=h)).json()
    assert [m["text"] for m in latest["messages"]] == ["m0", "m1", "m2", "m3"] and latest["hasMore"] is False
    first = latest["messages"][0]["id"]
    older = (await api.get(f"{base}/messages?limit=2&before={latest['messages'][2]['id']}", headers=h)).json()
    assert [m["text"] for m in older["messages"]] == ["m0", "m1"] and older["hasMore"] is False
    newer = (await api.get(f"{base}/messages?limit=2&after={first}", headers=h)).json()
    assert [m["text"] for m in newer["messages"]] == ["m1", "m2"] and newer["hasMore"] is True
    newer = (await api.get(f"{base}/messages?limit=3&after={first}", headers=h)).json()
    assert [m["text"] for m in newer["messages"]] == ["m1", "m2", "m3"] and newer["hasMore"] is False
    trail = (await api.get(f"{base}/audit?limit=5", headers=h)).json()  # created + 4 messages
    assert len(trail["entries"]) == 5 and trail["hasMore"] is False
    trail = (await api.get(f"{base}/audit?limit=2", headers=h)).json()
    assert trail["hasMore"] is True
    rest = (await api.get(f"{base}/audit?before={trail['entries'][-1]['id']}", headers=h)).json()
    assert [e["action"] for e in rest["entries"]] == ["sendMessage", "sendMessage", "createCollaboration"]


@pytest.mark.parametrize(
    "query",
    ["audit?before=3", "audit?before=abc", "audit?before=msg_01x", "messages?after=aud_01x", "messages?before=%20"],
)
async def test_a_cursor_that_is_not_an_id_of_its_kind_is_invalid_request(api, query):
    cid = (await create(api))["id"]
    r = await api.get(f"/api/collaborations/{cid}/{query}", headers=auth(api, OWNER))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_request" and r.json()["error"]["details"]["parameter"]


async def test_validation_names_the_missing_field_and_the_create_route_names_body_fields(api):
    cid = (await create(api))["id"]
    r = await act(api, OWNER, "proposeActivity", cid, {})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["fields"] == [{"path": "payload.title", "message": "Required"}]
    r = await api.post("/api/collaborations", json={"title": "a", "zz": 1}, headers=auth(api, OWNER))
    assert r.status_code == 422
    assert r.json()["error"]["details"]["fields"] == [{"path": "zz", "message": "Unknown field"}]
    r = await api.post("/api/collaborations", json={"description": "no title"}, headers=auth(api, OWNER))
    assert r.json()["error"]["details"]["fields"] == [{"path": "title", "message": "Required"}]


async def test_every_error_has_code_message_and_details(api):
    r = await api.get("/api/me")
    assert r.status_code == 401
    assert set(r.json()["error"]) == {"code", "message", "details"} and r.json()["error"]["details"] == {}


async def test_the_list_pages_with_next_and_every_collaboration_comes_once(api):
    made = [(await create(api, title=f"C{i}"))["id"] for i in range(7)]
    seen, after, pages = [], None, 0
    while True:
        query = "?limit=3" + (f"&after={after}" if after else "")
        page = (await api.get(f"/api/collaborations{query}", headers=auth(api, OWNER))).json()
        seen += [c["id"] for c in page["collaborations"]]
        pages += 1
        if not page["hasMore"]:
            assert page["next"] is None
            break
        after = page["next"]
    whole = (await api.get("/api/collaborations", headers=auth(api, OWNER))).json()
    assert whole["hasMore"] is False and whole["next"] is None
    assert pages == 3 and seen == [c["id"] for c in whole["collaborations"]]  # the same order, in pages
    assert sorted(seen) == sorted(made)  # none twice, none missed
    for bad in (
        "nope",
        "2026-12-01T10:00:00.000000Z~msg_1",
        "yesterday~col_1",
        "2026-1-1T1:1:1.5Z~col_1",
        "2026-12-01T10:00:00.0Z~col_1",
        "٢٠٢٦-12-01T10:00:00.000000Z~col_1",
    ):
        r = await api.get(f"/api/collaborations?after={bad}", headers=auth(api, OWNER))
        assert r.status_code == 400 and r.json()["error"]["details"]["parameter"] == "after", bad


async def test_paging_keeps_order_and_completeness_when_collaborations_share_a_time():
    from datetime import datetime, timezone

    from backend.runtime import Runtime

    settings = test_settings(action_rate_limit=1000)
    runtime = await Runtime.open(settings)
    try:
        async with LiveServer(build_api(settings, runtime=runtime), settings) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                h = {"authorization": f"Bearer {token(settings, OWNER)}"}
                made = [
                    (await client.post("/api/collaborations", json={"title": f"C{i}"}, headers=h)).json()["id"]
                    for i in range(6)
                ]
                coll = runtime.handle.db["collaborations"]
                for i, cid in enumerate(made):  # three pairs, each pair at one and the same millisecond
                    at = datetime(2026, 12, 1, 10, 0, 0, 123000 * (i // 2 + 1) % 1_000_000, tzinfo=timezone.utc)
                    await coll.update_one({"_id": cid}, {"$set": {"lastActivityAt": at}})
                seen, after = [], None
                while True:
                    query = "?limit=3" + (f"&after={after}" if after else "")  # pages split a pair
                    page = (await client.get(f"/api/collaborations{query}", headers=h)).json()
                    seen += [c["id"] for c in page["collaborations"]]
                    if not page["hasMore"]:
                        break
                    after = page["next"]
                docs = {
                    c["id"]: c for c in (await client.get("/api/collaborations", headers=h)).json()["collaborations"]
                }
    finally:
        await runtime.close()
    assert sorted(seen) == sorted(made) and len(seen) == 6  # every one once, ties split across pages
    assert seen == sorted(made, key=lambda cid: (docs[cid]["lastActivityAt"], cid), reverse=True)


async def test_list_is_newest_activity_first(api):
    a = await create(api, title="A")
    b = await create(api, title="B")
    await act(api, OWNER, "updateDetails", a["id"], {"description": "touched"})
    mine = (await api.get("/api/collaborations", headers=auth(api, OWNER))).json()["collaborations"]
    assert [c["title"] for c in mine] == ["A", "B"]
    assert b["id"] in [c["id"] for c in mine]


async def test_error_codes(api):
    cid = (await create(api))["id"]
    await act(api, OWNER, "addMember", cid, {"email": VIEWER, "role": "viewer"})
    cases = [
        (await act(api, VIEWER, "updateDetails", cid, {"title": "x"}), 403, "forbidden"),
        (await act(api, OWNER, "updateDetails", cid, {"title": "x"}, expectedVersion=1), 409, "version_conflict"),
        (await act(api, OWNER, "completeActivity", cid, {"activityId": "act_x"}), 404, "not_found"),
        (await act(api, OWNER, "noSuchAction", cid), 404, "not_found"),
        (await act(api, OWNER, "updateDetails", cid, {"title": 7}), 422, "validation_failed"),
        (await act(api, OWNER, "updateDetails", cid, {"title": "x", "color": "red"}), 422, "validation_failed"),
        (await act(api, OWNER, "sendMessage", cid, {"text": "x" * 4001}), 422, "validation_failed"),
        (await act(api, OWNER, "updateDetails", cid, {"title": "x"}, expectedVersion="2"), 422, "validation_failed"),
        (await act(api, OWNER, "updateDetails", cid, {"title": "x"}, extra=True), 422, "validation_failed"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["error"]["code"] == code and body["error"]["message"]
    fields = cases[5][0].json()["error"]["details"]["fields"]
    assert fields == [{"path": "payload.color", "message": "Unknown field"}]
    snap = (await api.get(f"/api/collaborations/{cid}", headers=auth(api, OWNER))).json()
    assert snap["version"] == 2 and snap["title"] == "Trip"


async def test_bad_query_parameters(api):
    cid = (await create(api))["id"]
    r = await api.get(f"/api/collaborations/{cid}/messages?limit=abc", headers=auth(api, OWNER))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    r = await api.get(f"/api/collaborations/{cid}/messages?limit=100000", headers=auth(api, OWNER))
    assert r.status_code == 400


@pytest.mark.parametrize("limit", ["\u0661", " 1_0", "1_0", "+5", " 5", "5 ", "5.0", "1" * 5000])
async def test_limit_is_ascii_digits_only(api, limit):
    # int() took " 1_0" as 10 and "\u0661" (Arabic-Indic one) as 1, so these were answered as pages.
    cid = (await create(api))["id"]
    for path in (f"/api/collaborations/{cid}/messages", f"/api/collaborations/{cid}/audit", "/api/collaborations"):
        r = await api.get(path, params={"limit": limit}, headers=auth(api, OWNER))
        assert r.status_code == 400, (path, limit, r.text)
        assert r.json()["error"] == {
            "code": "invalid_request",
            "details": {"parameter": "limit"},
            "message": "Query parameter 'limit' must be an integer.",
        }


async def test_unknown_routes_and_methods_use_the_error_shape(api):
    r = await api.get("/api/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await api.delete("/api/health")
    assert r.status_code == 405 and r.json()["error"]["code"] == "invalid_request"
    assert r.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("method", ["OPTIONS", "DELETE", "PUT"])
async def test_a_405_on_the_collaborations_list_allows_both_its_methods(api, method):
    # GET and POST /api/collaborations were two routes: Starlette's 405 named only the first's methods.
    r = await api.request(method, "/api/collaborations", headers=auth(api, OWNER))
    assert r.status_code == 405 and r.json()["error"]["code"] == "invalid_request"
    assert r.headers["allow"] == "GET, HEAD, POST"


async def test_rate_limit_answers_429_with_retry_after():
    settings = test_settings(action_rate_limit=3, action_rate_window=60)
    async with LiveServer(build_api(settings), settings) as server:
        async with httpx.AsyncClient(base_url=server.url) as api:
            h = {"authorization": f"Bearer {token(settings, OWNER)}"}
            codes = [(await api.post("/api/collaborations", json={"title": "t"}, headers=h)) for _ in range(4)]
            assert [c.status_code for c in codes] == [201, 201, 201, 429]
            assert codes[-1].json()["error"]["code"] == "rate_limited"
            assert int(codes[-1].headers["retry-after"]) >= 1
            other = {"authorization": f"Bearer {token(settings, EDITOR)}"}
            assert (await api.post("/api/collaborations", json={"title": "t"}, headers=other)).status_code == 201


async def test_request_ids(api):
    r = await api.get("/api/health", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert (await api.get("/api/health")).headers["x-request-id"]


async def test_openapi_and_offline_docs(api):
    doc = (await api.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.") and "/api/actions/proposeActivity" in doc["paths"]
    assert "ProposeActivity" in doc["components"]["schemas"]
    page = await api.get("/api/docs")
    assert page.status_code == 200 and "/api/docs/static/swagger-ui-bundle.js" in page.text
    js = await api.get("/api/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000


async def test_the_openapi_document_describes_what_the_routes_answer(api):
    # Found by fuzzing the document with schemathesis (docs/http-api.md, "Fuzzing").
    paths = (await api.get("/api/openapi.json")).json()["paths"]

    def query(path, method="get"):
        return {p["name"]: p["schema"] for p in paths[path][method].get("parameters", []) if p["in"] == "query"}

    metrics = await api.get("/metrics")  # Prometheus text, not the JSON the document said
    documented = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(documented) == ["text/plain"] and metrics.headers["content-type"].startswith("text/plain")
    assert "503" in paths["/api/ready"]["get"]["responses"]  # its own body, not the Error shape
    # The list's paging parameters were not documented at all; limits and cursors had no bounds.
    mine = query("/api/collaborations")
    assert set(mine) == {"limit", "after"} and (mine["limit"]["minimum"], mine["limit"]["maximum"]) == (1, 200)
    assert (await api.get("/api/collaborations?limit=201", headers=auth(api, OWNER))).status_code == 400
    cid = (await create(api))["id"]
    for path, name, prefix in [("messages", "after", "msg"), ("messages", "before", "msg"), ("audit", "before", "aud")]:
        params = query(f"/api/collaborations/{{id}}/{path}")
        assert params[name]["pattern"] == f"^{prefix}_" and params["limit"]["maximum"] == 200
        r = await api.get(f"/api/collaborations/{cid}/{path}?{name}=x", headers=auth(api, OWNER))
        assert r.status_code == 400, (path, name)
    statuses = query("/api/approvals")["status"]["enum"]
    assert statuses == ["pending", "approved", "rejected", "expired", "failed"]
    r = await api.get("/api/approvals?status=active", headers=auth(api, OWNER))
    assert r.status_code == 400 and r.json()["error"]["details"] == {"parameter": "status"}

    # An action may answer 202 {"approval"}; a payload with required fields is itself required,
    # one without may be missing or null (it is {}), and so may expectedVersion.
    def body(name):
        return paths[f"/api/actions/{name}"]["post"]["requestBody"]["content"]["application/json"]["schema"]

    assert "202" in paths["/api/actions/sendMessage"]["post"]["responses"]
    assert "202" in paths["/api/collaborations/{id}/ai/chat"]["post"]["responses"]
    assert body("addRule")["required"] == ["collaborationId", "payload"]
    assert (
        await api.post("/api/actions/addRule", json={"collaborationId": cid}, headers=auth(api, OWNER))
    ).status_code == 422
    assert body("archiveCollaboration")["required"] == ["collaborationId"]
    assert body("archiveCollaboration")["properties"]["collaborationId"]["minLength"] == 1
    # createCollaboration ignores a collaborationId, even "": the document must not refuse it.
    assert "minLength" not in body("createCollaboration")["properties"]["collaborationId"]
    r = await api.post(
        "/api/actions/createCollaboration",
        headers=auth(api, OWNER),
        json={"collaborationId": "", "payload": {"title": "New"}},
    )
    assert r.status_code == 200 and r.json()["collaborationId"] != cid
    assert {"type": "null"} in body("archiveCollaboration")["properties"]["payload"]["anyOf"]
    r = await api.post(
        "/api/actions/archiveCollaboration",
        headers=auth(api, OWNER),
        json={"collaborationId": cid, "payload": None, "expectedVersion": None},
    )
    assert r.status_code == 200, r.text
    assert (
        paths["/api/auth/dev-login"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "additionalProperties"
        ]
        is False
    )


async def test_config_tells_the_spa_its_auth_mode_and_message_limit():
    settings = test_settings(max_message_chars=1234)
    async with LiveServer(build_api(settings), settings) as server:
        async with httpx.AsyncClient(base_url=server.url) as api:
            r = await api.get("/api/config")
            assert r.status_code == 200
            assert r.json() == {"authMode": "dev", "maxMessageChars": 1234}


async def test_dev_login_does_not_exist_outside_dev_mode():
    settings = test_settings(auth_mode="supabase", supabase_url="https://example.supabase.co")
    async with LiveServer(build_api(settings), settings) as server:
        async with httpx.AsyncClient(base_url=server.url) as api:
            r = await api.post("/api/auth/dev-login", json={"email": "a@b.co"})
            assert r.status_code == 404
            assert (await api.get("/api/config")).json()["authMode"] == "supabase"


async def test_dev_login_refuses_unknown_fields_like_every_other_route(api):
    r = await api.post("/api/auth/dev-login", json={"email": "a@b.co", "x": 1, "password": "p"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_failed"
    assert r.json()["error"]["details"]["fields"] == [
        {"path": "password", "message": "Unknown field"},
        {"path": "x", "message": "Unknown field"},
    ]
