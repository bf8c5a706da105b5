"""The ASGI app for uvicorn workers (``api.asgi:app``), built from the environment."""

from __future__ import annotations

from api.main import create_app

app = create_app()
