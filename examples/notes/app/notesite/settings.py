"""Settings of the notes sample.

Everything that differs between environments comes from the environment, under this app's own
names (NOTES_*). It deliberately reads neither POSTGRES_* nor DATABASE_URL: whoever deploys it
has to hand the database over under the names the app chose.

Database, first match wins:
  NOTES_DB_URL   postgres://USER:PASSWORD@HOST:PORT/NAME?sslmode=...  (user, password and name
                 URL-quoted, e.g. a '/' in the password as %2F and an '@' as %40)
  NOTES_DB_HOST, NOTES_DB_PORT, NOTES_DB_NAME, NOTES_DB_USER, NOTES_DB_PASSWORD  (plain values)
"""

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = os.environ.get("NOTES_DEBUG", "0").lower() in ("1", "true", "yes", "on")
SECRET_KEY = os.environ.get("NOTES_SECRET_KEY") or ("notes-dev-only-insecure-key" if DEBUG else "")
if not SECRET_KEY:
    raise RuntimeError("NOTES_SECRET_KEY is not set (only NOTES_DEBUG=1 may run without it)")
ALLOWED_HOSTS = ["*"]
NOTES_RELEASE = os.environ.get("NOTES_RELEASE") or "unknown"


def database_from_url(url):
    """One DATABASES entry from a postgres:// (or postgresql://) URL, parsed with the standard library."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise RuntimeError(f"NOTES_DB_URL must start with postgres:// or postgresql://, not {parts.scheme!r}://")
    name = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not name:
        raise RuntimeError("NOTES_DB_URL needs a host and a database name: postgres://user:password@host:5432/name")
    return {
        "HOST": parts.hostname,
        "PORT": str(parts.port or 5432),
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "OPTIONS": dict(parse_qsl(parts.query)),
    }


def database_from_parts():
    return {
        "HOST": os.environ.get("NOTES_DB_HOST", "localhost"),
        "PORT": os.environ.get("NOTES_DB_PORT", "5432"),
        "NAME": os.environ.get("NOTES_DB_NAME", "notes"),
        "USER": os.environ.get("NOTES_DB_USER", "notes"),
        "PASSWORD": os.environ.get("NOTES_DB_PASSWORD", ""),
        "OPTIONS": {},
    }


_db = database_from_url(os.environ["NOTES_DB_URL"]) if os.environ.get("NOTES_DB_URL") else database_from_parts()
_db["OPTIONS"].setdefault("connect_timeout", 5)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        **_db,
        "CONN_MAX_AGE": 0,
    }
}

INSTALLED_APPS = [
    "notes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "notesite.urls"
WSGI_APPLICATION = "notesite.wsgi.application"
# /healthz has no trailing slash on purpose; don't redirect it to /healthz/.
APPEND_SLASH = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("NOTES_LOG_LEVEL", "INFO")},
}
