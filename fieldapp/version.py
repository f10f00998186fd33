"""This build's release version: what the phone reports in its heartbeats, what the about screen
shows, and what releases.toml records once it ships. pyproject.toml and the phone's APP_VERSION
(static/js/capture/sync.js) say the same (tests/unit/test_releases.py checks)."""
APP_VERSION = "0.3.0"
