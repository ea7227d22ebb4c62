"""clothingrec: clothing/person detection and clothing classification.

Importing the package makes the process offline- and CI-safe: caches live in the
project (never in the user's home), ultralytics does not try the network, and
progress bars can be silenced by the caller.  See :mod:`clothingrec.paths`.
"""
from clothingrec.paths import configure_environment

configure_environment()

__version__ = "0.1.0"
