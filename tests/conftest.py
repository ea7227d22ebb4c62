"""Shared pytest setup.

Nothing here may change the environment that nbval's notebook kernels inherit (for example
MPLBACKEND would stop inline figures): `make test` runs tests/ and notebooks/ in one session.
"""
import clothingrec  # noqa: F401  (sets the offline-safe environment before anything else)
