"""Tandem: a real-time collaboration backend driven by MongoDB change streams."""
