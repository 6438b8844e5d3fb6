"""The worker process: job queue runner, scheduler, check-in (docs/worker.md).

It imports the shared core (`backend.store`, `backend.engine`, `backend.ai`),
never the HTTP or WebSocket layers.
"""
