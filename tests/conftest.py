"""Shared pytest setup.

Nothing here may change the environment that nbval's notebook kernels inherit (for example
MPLBACKEND would stop inline figures): `make test` runs tests/ and notebooks/ in one session.
The offline-safe environment (project caches, no network, a local font for ultralytics) is the
exception: it is set here explicitly, before any test module imports ultralytics.
"""
from clothingrec.paths import configure_environment

configure_environment()
