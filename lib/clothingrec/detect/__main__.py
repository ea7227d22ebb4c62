"""``python -m clothingrec.detect`` (also under ``torchrun``): one detection run from a config."""
from clothingrec.paths import configure_environment

configure_environment()

from clothingrec.detect.recipe import main  # noqa: E402  (after the offline environment)

raise SystemExit(main())
