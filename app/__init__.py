"""The clothingrec web demo: Flask app served by waitress; models loaded once from the project's weights.

``python -m app --port 8000`` (``make serve``) or, in code, ``app.server.create_app(AppConfig(...))``.
See app/README.md for the API.
"""
