"""Entry point for gunicorn: `gunicorn wsgi:app`."""
from fieldapp import create_app

app = create_app()
