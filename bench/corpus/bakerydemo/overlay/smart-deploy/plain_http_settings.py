"""Deploy-side wrapper (not one of bakerydemo's files): its production settings behind a proxy that does not
terminate TLS. bakerydemo/settings/production.py sets SECURE_SSL_REDIRECT = True unconditionally, so every
page answers 301 to https://, and smart-deploy's proxy has no TLS yet (issue 20, item 11)."""

from bakerydemo.settings.production import *  # noqa: F403

SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
