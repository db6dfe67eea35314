"""Shared pytest configuration.

Fixture modules loaded for every test (session-scoped fixtures defined once, so shared work such
as the ONNX export runs once per session): add more names to ``pytest_plugins``.
"""

pytest_plugins = ("backend_fixtures", "_face_fixtures")
