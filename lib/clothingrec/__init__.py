"""clothingrec: clothing/person detection and clothing classification.

Importing the package changes nothing in the process.  Entry points (the notebook runner,
the web app, tests, benchmarks) call :func:`clothingrec.paths.configure_environment` to keep
caches in the project and third-party libraries offline; the Makefile and the Jupyter kernel
set the same variables (see :func:`clothingrec.paths.offline_environment`).
"""
__version__ = "0.1.0"
