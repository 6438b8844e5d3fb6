"""The HTTP layer: a Starlette app over the runtime's services."""
