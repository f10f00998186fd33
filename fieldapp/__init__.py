"""fieldapp: offline-first capture of administrative enforcement records (行政执法全过程记录)."""
from __future__ import annotations

from flask import Flask, render_template, request
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings, flask_config

__version__ = "0.1.0"


def create_app(config: dict | None = None, settings: Settings | None = None) -> Flask:
    """Build the app. ``settings`` overrides the environment; ``config`` overrides Flask config."""
    app = Flask(__name__, static_folder="static", template_folder="templates")
    settings = settings or Settings()
    app.config.update(flask_config(settings))
    app.config["FIELDAPP_SETTINGS"] = settings
    if config:
        app.config.update(config)
    if settings.trusted_proxies:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=0)

    from . import access, cli, db, events, i18n, security
    from .auth.session import init_app as init_sessions

    db.init_app(app)
    from .records import capture
    capture.install(app.extensions["fieldapp.sessionmaker"], enabled=settings.audit_events)
    from .records import service as audit_service
    audit_service.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    init_sessions(app)
    access.init_app(app)
    cli.init_app(app)
    _register_blueprints(app)
    events.subscribe_all()
    _register_error_pages(app)
    _register_template_helpers(app)
    _register_request_log(app, settings)
    return app


def _register_blueprints(app: Flask) -> None:
    from .access import allow
    from .admin import bp as admin_bp
    from .auth import bp as auth_bp
    from .backup.views import bp as backups_bp
    from .capture import bp as capture_bp
    from .documents.paper_views import bp as paper_bp
    from .documents.views import bp as documents_bp
    from .footage.views import bp as footage_bp
    from .ops import bp as ops_bp
    from .records.views import bp as records_bp
    from .review import bp as review_bp
    from .statistics.views import bp as statistics_bp
    from .sync import bp as sync_bp

    for bp in (auth_bp, admin_bp, backups_bp, capture_bp, documents_bp, paper_bp, footage_bp, ops_bp, records_bp, review_bp,
               statistics_bp, sync_bp):
        app.register_blueprint(bp)
    # Static files are the public app shell.
    allow(public=True)(app.view_functions["static"])


def _register_error_pages(app: Flask) -> None:
    from flask import jsonify

    def handler(status: int, code: str):
        def render(_exc):
            if request.path.startswith("/api/") or request.is_json:
                return jsonify(error=code), status
            return render_template("errors/error.html", status=status), status
        return render

    for status, code in ((403, "forbidden"), (404, "not_found"), (405, "method_not_allowed"),
                         (410, "gone"), (413, "too_large"), (500, "server_error")):
        app.register_error_handler(status, handler(status, code))


def _register_template_helpers(app: Flask) -> None:
    from flask_babel import get_locale

    from .i18n import local_time

    # The one way a page shows a time: Beijing time, one format (see i18n.local_time).
    app.add_template_filter(local_time, "local")

    @app.template_filter("combine")
    def combine(first: dict, second: dict) -> dict:
        return {**first, **second}

    @app.context_processor
    def globals_():
        from .access import role_label
        from .models import Role
        locale = "zh_CN" if get_locale().language == "zh" else "en"
        from .capture.strings import capture_strings
        from .version import APP_VERSION
        return {"current_locale": locale, "Role": Role, "role_label": role_label,
                "capture_strings": capture_strings, "app_version": APP_VERSION}


def _register_request_log(app: Flask, settings: Settings) -> None:
    from . import http_hygiene
    from .ops import metrics, request_log

    metrics.init_app(app, settings)
    request_log.init_app(app, enabled=settings.log_requests, log_format=settings.log_format,
                         observe=metrics.observe_request)
    # Outermost: closing a connection is asked of the server's own start_response.
    http_hygiene.init_app(app, max_bytes=settings.request_drain_max_bytes,
                          max_seconds=settings.request_drain_seconds)
