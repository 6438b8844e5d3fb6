"""AI providers (groq, ollama, offline) behind one interface (`provider.Provider`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backend.ai.provider import AIUnavailable, Completion, Provider, Task, Usage
from backend.settings import Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from backend.runtime import Runtime

__all__ = [
    "AIUnavailable",
    "Completion",
    "Provider",
    "Task",
    "Usage",
    "close_shared_provider",
    "make_provider",
    "shared_provider",
]


def make_provider(settings: Settings) -> Provider:
    """The provider `settings.ai` names: groq, ollama or offline."""
    if settings.ai == "groq":
        from backend.ai.groq_provider import GroqProvider

        return GroqProvider(settings)
    if settings.ai == "ollama":
        from backend.ai.ollama_provider import OllamaProvider

        return OllamaProvider(settings)
    from backend.ai.offline import OfflineProvider

    return OfflineProvider()


def shared_provider(runtime: Runtime) -> Provider:
    """The process's provider, made on first use and kept as `runtime.ai_provider` (tests may set their own)."""
    if runtime.ai_provider is None:
        runtime.ai_provider = make_provider(runtime.settings)
    return runtime.ai_provider


async def close_shared_provider(runtime: Runtime, app: Starlette | None = None) -> None:
    """An on_stop hook: close the shared provider's HTTP client."""
    provider, runtime.ai_provider = runtime.ai_provider, None
    if provider is not None:
        await provider.aclose()
