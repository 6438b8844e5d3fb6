"""Shared helpers for the core tests: a runtime on a fresh embedded store, users, tokens."""

from __future__ import annotations

from typing import Any

from backend.auth.dev_tokens import dev_user_id, issue_dev_token
from backend.domain.models import Actor
from backend.runtime import Runtime
from backend.settings import Settings, test_settings

OWNER, EDITOR, VIEWER, STRANGER = "owner@example.com", "editor@example.com", "viewer@example.com", "x@example.com"
# People with an account (they have signed in before): adding them by email invites no one.
ACCOUNTS = (OWNER, EDITOR, VIEWER, STRANGER)


def user(email: str) -> Actor:
    return Actor.user(dev_user_id(email))


def token(settings: Settings, email: str) -> str:
    return issue_dev_token(settings, email)["access_token"]


async def sign_in(runtime: Runtime, *emails: str) -> None:
    """These people have signed in with dev login before (as `POST /api/auth/dev-login` records it)."""
    for email in emails:
        await runtime.directory.signed_in(dev_user_id(email), email)


async def open_runtime(**overrides: Any) -> Runtime:
    runtime = await Runtime.open(test_settings(**overrides))
    await sign_in(runtime, *ACCOUNTS)
    return runtime


async def team(runtime: Runtime) -> str:
    """A collaboration with an owner, an editor and a viewer; returns its id."""
    engine = runtime.engine
    created = await engine.run("createCollaboration", user(OWNER), None, {"title": "Team"}, actor_email=OWNER)
    cid = created.collaborationId
    await engine.run("addMember", user(OWNER), cid, {"email": EDITOR, "role": "editor"})
    await engine.run("addMember", user(OWNER), cid, {"email": VIEWER, "role": "viewer"})
    return cid


class LiveServer:
    """The real app under a real uvicorn on 127.0.0.1, in the test's event loop."""

    def __init__(self, app: Any, settings: Settings):
        self.app = app
        self.settings = settings
        self.url = ""
        self._server: Any = None
        self._task: Any = None

    async def __aenter__(self) -> "LiveServer":
        import asyncio

        from backend.serve import Server, uvicorn_config

        config = uvicorn_config(self.app, self.settings, "127.0.0.1", 0)
        self._server = Server(config, self.app)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # uvicorn's hook, turned off: the test owns the signals
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._server.should_exit = True
        await self._task
