"""The HTTP API (FastAPI): ``create_app`` in :mod:`logmaster.api.app`; see section 8 of the
architecture. Dependencies for routes are in :mod:`logmaster.api.deps`."""
