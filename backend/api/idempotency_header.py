"""The `Idempotency-Key` header (docs/http-api.md "Idempotency"): a request sent again is applied once.

`run_once(request, who, render, handle)` wraps a route that applies something:
without the header it just runs `handle(None)`; with one, it claims the key for
(the caller, the key) with the request's fingerprint (method, path, canonical
JSON body) and either replays the stored answer (`Idempotent-Replayed: true`,
the same status and body bytes), refuses (422 idempotency_key_reused, 409
request_in_progress with Retry-After), or runs `handle(claim)`. The route
passes the claim down to the engine or the approval service, whose store write
stores `render(outcome)` with the effect, atomically (backend/store/idempotency.py).
A request that applied nothing gives the key back; one that did makes its
stored answer the one it gave (`finish`).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from backend.auth.tokens import Principal
from backend.errors import IdempotencyKeyReused, InvalidRequest, RequestInProgress, TandemError
from backend.store.idempotency import KEY, LEASE, Claim, ClaimLost, Idempotency, Reused, Running, Stored, fingerprint
from backend.wire import encode

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


def key_of(request: Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not KEY.fullmatch(raw):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 128 of the characters A-Z, a-z, 0-9, _ and -.", {"header": HEADER}
        )
    return raw


def rendered(status: int, body: Any) -> tuple[int, bytes]:
    """An answer as stored and sent: the status and the body's bytes (backend.wire.encode, as JSON does)."""
    return status, encode(body)


async def run_once(
    request: Request,
    who: Principal,
    render: Callable[[Any], tuple[int, bytes]],
    handle: Callable[[Claim | None], Awaitable[Response]],
    lease: timedelta = LEASE,
) -> Response:
    key = key_of(request)
    if key is None:
        return await handle(None)
    store = request.app.state.runtime.store.idempotency
    found = await store.claim(who.id, key, fingerprint(request.method, request.url.path, await request.body()), lease)
    if isinstance(found, Stored):
        return Response(found.body, status_code=found.status, media_type="application/json", headers={REPLAYED: "true"})
    if isinstance(found, Reused):
        raise IdempotencyKeyReused(details={"header": HEADER})
    if isinstance(found, Running):
        raise RequestInProgress(found.retry_after)
    claim = found
    claim.render = render
    try:
        response = await handle(claim)
    except ClaimLost:  # its lease ran out and another request holds the key now: this one applied nothing
        raise RequestInProgress(1) from None
    except TandemError as exc:
        await _settle(store, claim, exc.status, exc.to_dict())
        raise
    except BaseException:  # a failure after the effect committed leaves the answer written with it
        await asyncio.shield(_settle_answer(store, claim))
        raise
    if claim.committed:
        await store.finish(claim, response.status_code, bytes(response.body))
    await store.release(claim)  # a no-op once the answer is stored: only a claim still running is deleted
    return response


async def _settle_answer(store: Idempotency, claim: Claim) -> None:
    """A request that failed: if its effect committed, the answer written with it stays (no longer
    partial); if not, the key is given back. `release` only deletes a claim still running, so
    after a transaction that wrote the answer and then aborted (retried by the driver, failed
    in the end) the key is given back too."""
    if claim.committed and claim.answer is not None:
        await store.finish(claim, *claim.answer)
    await store.release(claim)


async def _settle(store: Idempotency, claim: Claim, status: int, body: dict[str, Any]) -> None:
    """A refused request: nothing applied gives the key back; if something was (the AI chat's
    question, before the AI failed) the error it ends with is its stored answer."""
    if claim.committed:
        await store.finish(claim, *rendered(status, body))
    await store.release(claim)
