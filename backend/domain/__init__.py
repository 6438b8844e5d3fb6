"""Pure domain logic: models, roles and the action catalogue. No I/O here."""
