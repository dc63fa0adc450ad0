"""Settings of gazette, the way many real projects write them: the database from DATABASE_URL through
dj-database-url (psycopg 3), Redis from REDIS_URL for Celery, HTTPS enforced behind a proxy that
terminates TLS."""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = os.environ.get("GAZETTE_ALLOWED_HOSTS", "localhost").split(",")
RELEASE = os.environ.get("APP_RELEASE", "unknown")

# Raises when DATABASE_URL is not a URL a database engine can be read from (dj-database-url's own checks).
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=600)}

CELERY_BROKER_URL = os.environ["REDIS_URL"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Behind a proxy that terminates TLS and says so in X-Forwarded-Proto.
SECURE_SSL_REDIRECT = os.environ.get("GAZETTE_SSL_REDIRECT", "1") == "1"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

MEDIA_ROOT = os.environ.get("GAZETTE_MEDIA_ROOT", "/srv/media")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "newsroom",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "gazette.urls"
WSGI_APPLICATION = "gazette.wsgi.application"
APPEND_SLASH = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
