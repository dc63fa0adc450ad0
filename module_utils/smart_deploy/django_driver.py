# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The smart-deploy driver: runs INSIDE a container of the application's own image.

smart-deploy's modules mount this file into a one-off container of the release image and run it
with the image's Python, so the application needs no change and no extra dependency: only the
standard library and Django, which the image already has. Top-level code is standard library only
(the file also ships inside Ansible modules and unit tests, where Django is absent).

    python driver.py analyze    offline (no database, no network): the migration plan against the
                                applied set given as input, pre-checks, what each migration touches
    python driver.py rehearse   on a scratch copy: apply the plan one migration at a time, timing
                                statements and locks; prove or refuse a fake on duplicate objects
    python driver.py apply      on production: apply a validated plan (fake exactly the listed
                                migrations, apply the rest), in one transaction when all are atomic
    python driver.py reverse    on production: undo a failed deploy's migrations when that loses
                                no data, or say why not
    python driver.py test       on a scratch database: the app's own test suite, with Django's test
                                runner (what `manage.py test <args>` runs), the input's "args" being
                                what follows `test`; exit status 1 when a test fails
    python driver.py manage     `driver.py manage <args>` runs what `manage.py <args>` runs (runserver,
                                migrate...) on the database below; Django's own output and exit
                                status, no input, no JSON result (./deploy dev runs the app with it)
    python driver.py identify   in a new container of the release (`docker exec -i <container> python -
                                identify`, this file on stdin): which database the app's OWN settings
                                reach as it serves - no SMART_DEPLOY_DB_* override -, every alias of
                                DATABASES (never a password) and what the server says of the default
                                one (IDENTITY_SQL); smart-deploy compares it with the database it migrated

Input (all but manage): JSON in the file named by SMART_DEPLOY_INPUT. Output: one JSON line prefixed with
RESULT_MARK on stdout. Exit status: 0 done, 1 the app's tests failed (test only), 2 the command could
not run (the JSON says why).

The database: smart-deploy chooses it, not the app's settings. When SMART_DEPLOY_DB_NAME is set, the
driver imports the app's settings module and, before Django is set up and before any connection,
replaces settings.DATABASES with one alias, 'default', pointed at exactly these values, whatever the
settings read (their own variable names, DATABASE_URL, computed values):

    SMART_DEPLOY_DB_HOST        host name or address ('' or unset: libpq's default, the local socket)
    SMART_DEPLOY_DB_PORT        port number ('' or unset: libpq's default)
    SMART_DEPLOY_DB_NAME        database name; the switch: unset or '' leaves the app's settings alone
    SMART_DEPLOY_DB_USER        role to connect as
    SMART_DEPLOY_DB_PASSWORD    its password (never written to the output, masked if it shows up there)
    SMART_DEPLOY_DB_SSLMODE     optional: libpq's sslmode (disable, require, verify-full...)
    SMART_DEPLOY_DB_OPTIONS     optional: a JSON object, the alias's OPTIONS (the app's OPTIONS are
                                dropped: a 'service', 'passfile' or connection pool there could lead
                                elsewhere)

The app's ENGINE stays when it is a PostgreSQL backend (postgresql, postgis, or a wrapper with either
in its dotted path), otherwise django.db.backends.postgresql; CONN_MAX_AGE is 0 and CONN_HEALTH_CHECKS
off; ATOMIC_REQUESTS, AUTOCOMMIT, TIME_ZONE, DISABLE_SERVER_SIDE_CURSORS and TEST are kept from the
app's 'default'; any other alias is dropped (code that uses one fails instead of writing elsewhere) and
DATABASE_ROUTERS is emptied. After django.setup() the driver checks that Django's connection settings
are still the chosen ones (an AppConfig.ready() could change them) and refuses to run otherwise. The
result JSON says what was overridden under "database" (never the password).

The settings module: DJANGO_SETTINGS_MODULE when set, else the one the project's manage.py names in its
``os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...)`` (what ``manage.py`` would use), on every command.
A settings module that cannot be found or imported is reported as such, naming the component key
``settings_module`` that chooses it.

Placeholders: the containers that never touch production (the analysis, the rehearsal, the app's tests,
./deploy dev) get every name of the app's secret environment with a throwaway value made on the controller
(``placeholder()``, the filter smart_deploy_placeholders): ``smart-deploy-placeholder-<name>``, or, for a
secret shaped like a URL, a URL of the same scheme (nothing else of the secret). Before the settings import,
the driver points each such URL at the database it points Django at (``point_placeholders()``): a
PostgreSQL URL (postgres://, postgresql://, pgsql://...) at SMART_DEPLOY_DB_* exactly, any other scheme
(redis://, amqp://, https://...) at that host, path /0, so that dj-database-url, django-environ's env.db() and
env.cache() and DSN parsers accept them.

Failures: every failure says whose it is ("origin"): "app" (PostgreSQL refused the SQL - a SQLSTATE -, or the
app's code or settings raised) or "smart-deploy" (the driver itself broke: an exception raised in this file, or a
database client error without a SQLSTATE while no code of the app was running); the latter carries its
traceback, and smart-deploy reports it as its own defect, never as the app's (``failure_origin()``).
"""

import contextlib
import copy
import json
import os
import re
import sys
import time
import traceback

RESULT_MARK = "SMART_DEPLOY_RESULT="
DEFECT_NOTE = " (a defect of smart-deploy's driver, not of the app: report it to smart-deploy with the traceback)"
DUPLICATE_OBJECT = ("42P07", "42701", "42710")  # relation, column, object already exists
MISSING_OBJECT = ("42P01", "42703", "42704")
REFERENCE_DB = "smart_deploy_reference"
SCHEMA_CREATING = ("CreateModel", "AddField", "AddIndex", "AddConstraint", "AlterUniqueTogether", "AlterIndexTogether")
UNKNOWN_TABLES = ("RunPython", "RunSQL", "SeparateDatabaseAndState")
MAX_STATEMENTS = 200


def emit(result):
    result = redact(json.loads(json.dumps(result, default=str)), os.environ.get(DB_PASSWORD_ENV, ""))
    sys.stdout.flush()
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(result, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def read_input():
    path = os.environ.get("SMART_DEPLOY_INPUT")
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def setup_django(environ=None):
    """Set Django up in the app's project, on the database smart-deploy chose (see the module's
    docstring). Returns the override's summary (no password), or None when the app's own settings are
    used (SMART_DEPLOY_DB_NAME unset)."""
    environ = os.environ if environ is None else environ
    source = prepare_environment(environ)
    import django

    before = import_settings(environ, source)  # imports the app's settings module; connects nowhere
    if not environ.get("SMART_DEPLOY_DB_NAME"):  # the app's own database settings, as before
        django.setup()
        return None
    from django.conf import settings

    databases = database_override(environ, before)
    wanted = copy.deepcopy(databases["default"])  # Django fills the dict in place; compare with a copy
    settings.DATABASES = databases
    settings.DATABASE_ROUTERS = []
    django.setup()
    from django.db import connections, router

    wrong = override_mismatch(wanted, connections.settings, router.routers)
    if wrong:
        raise AppProblem("the database override did not hold after django.setup(): %s" % wrong)
    return override_summary(before, databases)


class AppProblem(Exception):
    """A problem of the app or its configuration found by the driver (not a defect of smart-deploy)."""


SETTINGS_KEY = "smart_deploy_components.<the Django component>.settings_module"


def prepare_environment(environ):
    """What every command does before Django: the project folder first on sys.path, the settings module
    found the way manage.py finds it, the URL placeholders pointed at the driver's database. Returns where
    the settings module's name came from (for messages)."""
    project_dir = environ.get("SMART_DEPLOY_PROJECT_DIR") or os.getcwd()
    if project_dir not in sys.path:
        sys.path.insert(0, project_dir)
    source = "DJANGO_SETTINGS_MODULE"
    if not environ.get("DJANGO_SETTINGS_MODULE"):
        manage_py = os.path.join(project_dir, "manage.py")
        found = None
        if os.path.exists(manage_py):
            with open(manage_py, encoding="utf-8", errors="replace") as handle:
                found = settings_module_in(handle.read())
        if found:
            environ["DJANGO_SETTINGS_MODULE"] = found  # child processes (runserver's autoreloader) inherit it
            source = "%s's default" % manage_py
        else:
            source = "none: DJANGO_SETTINGS_MODULE is not set and %s names none" % (
                manage_py if os.path.exists(manage_py) else "there is no %s that" % manage_py)  # fmt: skip
    environ.update(point_placeholders(environ))
    return source


def import_settings(environ, source):
    """The app's settings.DATABASES, importing its settings module; an AppProblem naming the settings module,
    where its name came from and the key that chooses it when that fails."""
    from django.conf import settings

    try:
        return settings.DATABASES
    except Exception as exc:
        raise AppProblem(settings_problem(exc, environ.get("DJANGO_SETTINGS_MODULE"), source)) from exc


def settings_problem(exc, module, source):
    """Why the app's settings could not be used, in words, with the way to choose another settings module."""
    fix = "set settings_module in the Django component's entry (%s) to the dotted path of the app's settings module" % SETTINGS_KEY
    if not module:
        return "Django's settings module is not known (%s): %s" % (source, fix)
    missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    if missing and (module == missing or module.startswith(missing + ".")):
        return "the settings module %s (from %s) cannot be imported: %s (the project folder is %s, on sys.path); %s" % (
            module, source, error_message(exc), sys.path[0], fix)  # fmt: skip
    return "the settings module %s (from %s) failed to import: %s. If %s is not the app's settings module, %s" % (
        module, source, error_message(exc), module, fix)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Placeholders of the app's secrets (see the module's docstring)
# --------------------------------------------------------------------------------------------------

PLACEHOLDER = "smart-deploy-placeholder"
URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
URL_PLACEHOLDER = re.compile(r"^([a-z][a-z0-9+.\-]*)://%s-([a-z0-9_]*)@[^/]*/[^/]*$" % PLACEHOLDER)


def placeholder(name, value):
    """The throwaway value that stands for the secret ``value`` of variable ``name`` where production's secrets
    never go: ``smart-deploy-placeholder-<name>``, or for a URL ``<scheme>://smart-deploy-placeholder-<name>@localhost/0``
    (the scheme is the only thing kept of the secret). The driver points URL placeholders at its database."""
    label = "%s-%s" % (PLACEHOLDER, re.sub(r"[^a-z0-9_]", "_", str(name).lower()))
    match = URL_SCHEME.match(str(value if value is not None else ""))
    if match:
        return "%s://%s@localhost/0" % (match.group(1).lower(), label)
    return label


def placeholders(secret_env):
    """``{name: placeholder}`` for every name of the app's secret environment (``placeholder()``)."""
    return {name: placeholder(name, value) for name, value in (secret_env or {}).items()}


def postgresql_scheme(scheme):
    """Whether a URL scheme names a PostgreSQL database (dj-database-url's and django-environ's names for it)."""
    return "postg" in scheme or scheme in ("pgsql", "psql") or scheme.startswith("timescale")


def url_part(text):
    """``text`` quoted for a URL's user, password or path: every reserved character."""
    from urllib.parse import quote

    return quote(str(text), safe="")


def point_placeholders(environ):
    """``{name: URL}`` for the URL placeholders in ``environ``, pointed where the driver points Django (the
    SMART_DEPLOY_DB_* values): a PostgreSQL URL at that database with its user and password, any other URL at
    that host (path /0). Empty when SMART_DEPLOY_DB_NAME is unset (the app's own settings: nothing to point at)
    or nothing is a URL placeholder. Applying it twice changes nothing more."""
    if not environ.get("SMART_DEPLOY_DB_NAME"):
        return {}
    host = environ.get("SMART_DEPLOY_DB_HOST") or "localhost"
    host = "[%s]" % host if ":" in host else host
    port = (environ.get("SMART_DEPLOY_DB_PORT") or "").strip()
    user, password = environ.get("SMART_DEPLOY_DB_USER") or "", environ.get(DB_PASSWORD_ENV) or ""
    pointed = {}
    for name, value in environ.items():
        match = URL_PLACEHOLDER.match(value or "")
        if not match:
            continue
        scheme, label = match.groups()
        if postgresql_scheme(scheme):
            login = url_part(user) + (":" + url_part(password) if password else "")
            pointed[name] = "%s://%s%s%s/%s" % (scheme, login + "@" if login else "", host, ":" + port if port else "",
                                                url_part(environ["SMART_DEPLOY_DB_NAME"]))  # fmt: skip
        else:
            pointed[name] = "%s://%s-%s@%s/0" % (scheme, PLACEHOLDER, label, host)
    return pointed


# --------------------------------------------------------------------------------------------------
# Pure helpers (no Django): SQLSTATE, statement classification, schema comparison.
# --------------------------------------------------------------------------------------------------


DB_ENV = (
    ("HOST", "SMART_DEPLOY_DB_HOST"), ("PORT", "SMART_DEPLOY_DB_PORT"), ("NAME", "SMART_DEPLOY_DB_NAME"),
    ("USER", "SMART_DEPLOY_DB_USER"), ("PASSWORD", "SMART_DEPLOY_DB_PASSWORD"),
)  # fmt: skip
DB_PASSWORD_ENV = "SMART_DEPLOY_DB_PASSWORD"
DEFAULT_ENGINE = "django.db.backends.postgresql"
KEPT_DB_SETTINGS = ("ATOMIC_REQUESTS", "AUTOCOMMIT", "TIME_ZONE", "DISABLE_SERVER_SIDE_CURSORS", "TEST")
CHECKED_DB_SETTINGS = ("ENGINE", "NAME", "USER", "HOST", "PORT", "OPTIONS", "CONN_MAX_AGE")


def postgresql_engine(engine):
    """Whether a DATABASES ENGINE is a PostgreSQL backend (Django's, PostGIS, or a wrapper of either)."""
    if not isinstance(engine, str):
        return False
    parts = engine.lower().split(".")
    return any(part.startswith(("postgresql", "postgis")) for part in parts)


def database_override(environ, databases):
    """The DATABASES the driver runs on: None when ``environ`` has no SMART_DEPLOY_DB_NAME (the app's
    own settings stand), else a new dict with 'default' only, pointed at the SMART_DEPLOY_DB_* values.
    ``databases`` (the app's DATABASES) is not changed. Errors never quote the password or OPTIONS."""
    if not environ.get("SMART_DEPLOY_DB_NAME"):
        return None
    previous = (databases or {}).get("default") or {}
    if not isinstance(previous, dict):
        previous = {}
    port = (environ.get("SMART_DEPLOY_DB_PORT") or "").strip()
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError("SMART_DEPLOY_DB_PORT is not a port number: %r" % port)
    options = {}
    raw_options = environ.get("SMART_DEPLOY_DB_OPTIONS") or ""
    if raw_options.strip():
        try:
            options = json.loads(raw_options)
        except ValueError:
            options = None
        if not isinstance(options, dict):
            raise ValueError("SMART_DEPLOY_DB_OPTIONS is not a JSON object")
    if environ.get("SMART_DEPLOY_DB_SSLMODE"):
        options["sslmode"] = environ["SMART_DEPLOY_DB_SSLMODE"]
    engine = previous.get("ENGINE")
    default = {key: copy.deepcopy(previous[key]) for key in KEPT_DB_SETTINGS if key in previous}
    default.update({key: environ.get(name) or "" for key, name in DB_ENV})
    default.update(
        ENGINE=engine if postgresql_engine(engine) else DEFAULT_ENGINE,
        PORT=port,
        OPTIONS=options,
        CONN_MAX_AGE=0,
        CONN_HEALTH_CHECKS=False,
    )
    return {"default": default}


def override_summary(before, after):
    """What the override changed, for the result JSON: the target and what was dropped (no password)."""
    default = after["default"]
    previous = (before or {}).get("default") or {}
    return {
        "overridden": True,
        "engine": default["ENGINE"],
        "host": default["HOST"],
        "port": default["PORT"],
        "name": default["NAME"],
        "user": default["USER"],
        "option_keys": sorted(default["OPTIONS"]),
        "app_engine_replaced": previous.get("ENGINE") != default["ENGINE"],
        "dropped_aliases": sorted(alias for alias in (before or {}) if alias != "default"),
    }


def override_mismatch(wanted, connection_settings, routers):
    """Why Django's connection settings are not the override any more ('' when they are)."""
    wrong = []
    if sorted(connection_settings) != ["default"]:
        wrong.append("aliases %s (expected only default)" % sorted(connection_settings))
    actual = connection_settings.get("default", {})
    for key in CHECKED_DB_SETTINGS:
        if actual.get(key) != wanted.get(key):
            wrong.append("%s is %r, not %r" % (key, actual.get(key), wanted.get(key)) if key != "OPTIONS" else "OPTIONS changed")
    if actual.get("PASSWORD") != wanted.get("PASSWORD"):
        wrong.append("PASSWORD changed")
    if list(routers):
        wrong.append("DATABASE_ROUTERS is not empty")
    return "; ".join(wrong)


def redact(value, secret):
    """``value`` (JSON-like data) with every occurrence of ``secret`` in its strings masked."""
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, "********")
    if isinstance(value, dict):
        return {key: redact(item, secret) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item, secret) for item in value]
    return value


def sqlstate(exc):
    """SQLSTATE of a database error: Django re-raises driver errors, the code is on the cause."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        code = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
        if code:
            return code
        exc = exc.__cause__ or exc.__context__
    return None


def error_message(exc):
    return ("%s: %s" % (type(exc).__name__, str(exc).strip())).strip()


APP, SMART_DEPLOY = "app", "smart-deploy"
CLIENT_ERRORS = ("InterfaceError", "ProgrammingError")  # the database client used wrongly (DB-API names)


def exception_chain(exc):
    seen = []
    while exc is not None and all(exc is not other for other in seen):
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def failure_origin(exc, driver_file=None, library_dirs=None):
    """Whose failure ``exc`` is: APP or SMART_DEPLOY (see the module's docstring).

    - a problem the driver found in the app or its configuration (AppProblem), or a SQLSTATE (PostgreSQL
      refused the SQL): the app's;
    - raised in this file (the driver's own code broke): smart-deploy's;
    - an InterfaceError or ProgrammingError without a SQLSTATE (the database client used wrongly) while no
      code of the app ran (no frame outside the driver, the standard library and the installed packages):
      smart-deploy's;
    - anything else (the app's code, its settings, a migration of an installed package): the app's."""
    if isinstance(exc, AppProblem) or sqlstate(exc):
        return APP
    driver_file = os.path.realpath(driver_file or __file__)
    # a frame of Python code has its file's absolute path; compiled and frozen code do not (transform.pyx, <frozen ...>)
    frames = [os.path.realpath(frame.filename) if os.path.isabs(frame.filename) else None
              for frame in traceback.extract_tb(exc.__traceback__)]  # fmt: skip
    if frames and frames[-1] == driver_file:
        return SMART_DEPLOY
    library_dirs = tuple(library_dirs) if library_dirs is not None else installed_code_dirs()
    app_code = [f for f in frames if f and f != driver_file and not f.startswith(library_dirs)]
    client_error = any(type(item).__name__ in CLIENT_ERRORS for item in exception_chain(exc))
    return SMART_DEPLOY if client_error and not app_code else APP


def installed_code_dirs():
    """Folders of code that is not the app's: the standard library and the installed packages."""
    import sysconfig

    paths = {sysconfig.get_paths().get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {path for path in sys.path if path.rstrip("/").endswith(("site-packages", "dist-packages"))}
    return tuple(os.path.realpath(path).rstrip(os.sep) + os.sep for path in paths if path)


def failure(exc):
    """What the result says of a failure: its message and SQLSTATE, whose it is, and smart-deploy's traceback
    when it is smart-deploy's."""
    origin = failure_origin(exc)
    found = {"sqlstate": sqlstate(exc), "message": error_message(exc), "type": type(exc).__name__, "origin": origin}
    if origin == SMART_DEPLOY:
        found["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=30))[-12000:]
    return found


def quote_ident(name):
    """``name`` as one SQL identifier: in double quotes, embedded double quotes doubled (what PostgreSQL's
    quote_ident does, quoting always). Identifiers cannot be query parameters; values always are."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ValueError("not an SQL identifier: %r" % (name,))
    return '"%s"' % name.replace('"', '""')


IDENT = r'("(?:[^"]|"")+"|[\w$]+)(?:\.("(?:[^"]|"")+"|[\w$]+))?'
LOCK_RULES = [
    (
        re.compile(r"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\b.*?\bON\s+(?:ONLY\s+)?" + IDENT, re.I | re.S),
        "SHARE UPDATE EXCLUSIVE",
        "index_concurrent",
    ),
    (re.compile(r"^CREATE\s+(?:UNIQUE\s+)?INDEX\b.*?\bON\s+(?:ONLY\s+)?" + IDENT, re.I | re.S), "SHARE", "index"),
    (re.compile(r"^DROP\s+INDEX\s+CONCURRENTLY\b", re.I), "SHARE UPDATE EXCLUSIVE", "drop_index"),
    (re.compile(r"^DROP\s+INDEX\b", re.I), "ACCESS EXCLUSIVE", "drop_index"),
    (
        re.compile(r"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?" + IDENT + r"\s+VALIDATE\s+CONSTRAINT", re.I),
        "SHARE UPDATE EXCLUSIVE",
        "validate",
    ),
    (re.compile(r"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?" + IDENT, re.I), "ACCESS EXCLUSIVE", "alter"),
    (re.compile(r"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?" + IDENT, re.I), "ACCESS EXCLUSIVE", "drop_table"),
    (re.compile(r"^TRUNCATE\s+(?:TABLE\s+)?" + IDENT, re.I), "ACCESS EXCLUSIVE", "truncate"),
    (re.compile(r"^CREATE\s+TABLE\b", re.I), None, "create_table"),
    (re.compile(r"^(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:ONLY\s+)?" + IDENT, re.I), "ROW EXCLUSIVE", "dml"),
]


def unquote(identifier):
    if identifier and identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier


def classify_statement(sql):
    """(lock mode, relation, kind) a statement takes, from its text. Lock is None when the
    statement locks nothing that exists before it (CREATE TABLE) or is a plain read."""
    text = sql.strip().lstrip("(").strip()
    for pattern, mode, kind in LOCK_RULES:
        match = pattern.match(text)
        if match:
            groups = [g for g in match.groups() if g] if match.groups() else []
            relation = unquote(groups[-1]) if groups else None
            return mode, relation, kind
    return None, None, "other"


def statement_warnings(sql):
    """Dangerous-operation kinds a DDL statement shows by its text."""
    text = " ".join(sql.split()).upper()
    found = []
    if re.match(r"^CREATE (UNIQUE )?INDEX (?!CONCURRENTLY)", text):
        found.append("non-concurrent-index")
    if text.startswith("ALTER TABLE"):
        if re.search(r"ALTER COLUMN \S+ (SET DATA )?TYPE ", text):
            found.append("column-type-change")
        if re.search(r"ALTER COLUMN \S+ SET NOT NULL", text):
            found.append("set-not-null")
        if re.search(r"\bADD COLUMN\b.*\bNOT NULL\b", text) and " DEFAULT " not in text:
            found.append("add-not-null-column")
        if re.search(r"\bDROP COLUMN\b", text):
            found.append("drop-column")
        if re.search(r"\bRENAME\b", text):
            found.append("rename")
        if re.search(r"\bADD CONSTRAINT\b.*\b(UNIQUE|FOREIGN KEY|CHECK)\b", text) and "NOT VALID" not in text:
            found.append("validating-constraint")
    if text.startswith("DROP TABLE"):
        found.append("drop-table")
    return found


def describe_differences(copy_rows, reference_rows):
    """Differences between two table descriptions ({kind: {name: definition}}), in words."""
    differences = []
    for kind in ("column", "constraint", "index"):
        ours, theirs = copy_rows.get(kind, {}), reference_rows.get(kind, {})
        for name in sorted(set(ours) | set(theirs)):
            if name not in ours:
                differences.append("%s %s missing on the database (the migration has: %s)" % (kind, name, theirs[name]))
            elif name not in theirs:
                differences.append("%s %s is on the database but not in the migration (%s)" % (kind, name, ours[name]))
            elif ours[name] != theirs[name]:
                differences.append("%s %s differs: database has %s, the migration makes %s" % (kind, name, ours[name], theirs[name]))
    return differences


# --------------------------------------------------------------------------------------------------
# Django side
# --------------------------------------------------------------------------------------------------


def offline_loader(applied_keys):
    """A MigrationLoader over the image's migration files with ``applied_keys`` as the applied set,
    without touching any database (the applied set was read from production by psql)."""
    from django.db import connections
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    applied = {tuple(key.split(".", 1)): None for key in applied_keys}
    MigrationRecorder.applied_migrations = lambda self: dict(applied)
    MigrationRecorder.has_table = lambda self: True
    return MigrationLoader(connections["default"], ignore_no_migrations=True)


def key_of(migration):
    return "%s.%s" % (migration.app_label, migration.name)


def table_of(apps, app_label, model_name):
    try:
        return apps.get_model(app_label, model_name)._meta.db_table
    except LookupError:
        return None


def field_tables(apps, app_label, model_name, field_name):
    """Tables a field operation involves: the model's, its relation's and a many-to-many's own table."""
    tables = {table_of(apps, app_label, model_name)}
    try:
        model = apps.get_model(app_label, model_name)
        field = model._meta.get_field(field_name)
    except Exception:  # model or field absent on this side of the operation
        return tables
    if getattr(field, "remote_field", None) is not None and field.remote_field.model is not None:
        related = field.remote_field.model
        if not isinstance(related, str):
            tables.add(related._meta.db_table)
        through = getattr(field.remote_field, "through", None)
        if through is not None and not isinstance(through, str):
            tables.add(through._meta.db_table)
    return tables


def operation_effects(operation, app_label, before_apps, after_apps):
    """(tables touched, objects created, tables unknown?) of one operation."""
    from django.db.migrations import operations as ops

    name = type(operation).__name__
    touched, creates = set(), []
    if isinstance(operation, (ops.RunPython, ops.RunSQL, ops.SeparateDatabaseAndState)):
        return touched, creates, True
    if isinstance(operation, ops.CreateModel):
        table = table_of(after_apps, app_label, operation.name)
        creates.append({"kind": "table", "table": table})
        for _field_name, field in operation.fields:
            remote = getattr(field, "remote_field", None)
            if remote is not None and getattr(remote, "through", None) is not None:
                model = after_apps.get_model(app_label, operation.name)
                through = model._meta.get_field(_field_name).remote_field.through
                creates.append({"kind": "table", "table": through._meta.db_table})
        return touched, creates, False
    if isinstance(operation, (ops.DeleteModel,)):
        touched.add(table_of(before_apps, app_label, operation.name))
        return touched, creates, False
    if isinstance(operation, (ops.RenameModel,)):
        touched.add(table_of(before_apps, app_label, operation.old_name))
        touched.add(table_of(after_apps, app_label, operation.new_name))
        return touched, creates, False
    if isinstance(operation, (ops.AddField, ops.RemoveField, ops.AlterField, ops.RenameField)):
        field_name = getattr(operation, "name", None) or getattr(operation, "new_name", None)
        old_name = getattr(operation, "old_name", field_name)
        touched |= field_tables(before_apps, app_label, operation.model_name, old_name)
        touched |= field_tables(after_apps, app_label, operation.model_name, field_name)
        if isinstance(operation, ops.AddField):
            model = after_apps.get_model(app_label, operation.model_name)
            field = model._meta.get_field(operation.name)
            creates.append({"kind": "column", "table": model._meta.db_table, "column": field.column})
        return {t for t in touched if t}, creates, False
    model_name = getattr(operation, "model_name", None) or getattr(operation, "name", None)
    if model_name and name not in ("AlterModelOptions", "AlterModelManagers"):
        table = table_of(after_apps, app_label, model_name) or table_of(before_apps, app_label, model_name)
        if table:
            touched.add(table)
            if isinstance(operation, ops.AddIndex):
                creates.append({"kind": "index", "table": table, "name": operation.index.name})
            elif isinstance(operation, ops.AddConstraint):
                creates.append({"kind": "constraint", "table": table, "name": operation.constraint.name})
            elif name in ("AlterUniqueTogether", "AlterIndexTogether"):
                creates.append({"kind": name, "table": table})
        return touched, creates, False
    if name in ("AlterModelOptions", "AlterModelManagers", "CreateExtension", "CreateCollation"):
        return touched, creates, False
    return touched, creates, True  # an operation we do not know: assume it may touch anything


def reversible(operation):
    from django.db.migrations import operations as ops

    if isinstance(operation, ops.RunPython):
        return operation.reverse_code is not None
    if isinstance(operation, ops.RunSQL):
        return operation.reverse_sql is not None
    return bool(getattr(operation, "reversible", True))


def model_or_none(apps, app_label, model_name):
    try:
        return apps.get_model(app_label, model_name)
    except LookupError:
        return None


def field_or_none(model, name):
    try:
        return model._meta.get_field(name) if model is not None else None
    except Exception:  # FieldDoesNotExist
        return None


def migratable(model):
    """Whether Django changes the schema for this model (managed, not a proxy, not swapped out)."""
    return model is not None and model._meta.managed and not model._meta.proxy and not model._meta.swapped


def field_column(field):
    """The column of a field that has one of its own (None: many-to-many, generic relations...)."""
    if field is None or field.many_to_many or not getattr(field, "concrete", False):
        return None
    return field.column


def sql_texts(sql):
    """A RunSQL's ``sql`` as a list of texts (a text, or a list of texts and (text, params) pairs)."""
    if isinstance(sql, str):
        return [sql]
    return [item[0] if isinstance(item, (list, tuple)) else item for item in sql or [] if isinstance(item, (str, list, tuple))]


def schema_facts(operation, app_label, before, after):
    """What one operation does to the schema that the OLD code could notice, as plain data for compat.py
    (module_utils/smart_deploy/compat.py classifies it; this side only reads Django's objects): the tables and
    columns Django computes from the project states ``before`` and ``after`` the operation (db_table, db_column),
    nullability, db_default, many-to-many, whether the model is managed; a RunSQL's own SQL texts. A
    SeparateDatabaseAndState gives the facts of its database operations only (its state operations change no
    schema). Other operations give none."""
    from django.db.migrations import operations as ops
    from django.db.models import NOT_PROVIDED

    name = type(operation).__name__
    fact = {"type": name, "describe": operation.describe()}
    if isinstance(operation, ops.SeparateDatabaseAndState):
        facts, state = [], before.clone()
        for database_operation in operation.database_operations:
            following = state.clone()
            database_operation.state_forwards(app_label, following)
            facts += schema_facts(database_operation, app_label, state, following)
            state = following
        return facts
    if isinstance(operation, ops.RunSQL):
        return [dict(fact, type="RunSQL", sql=sql_texts(operation.sql))]
    if isinstance(operation, ops.DeleteModel):
        model = model_or_none(before.apps, app_label, operation.name)
        return [dict(fact, type="DeleteModel", table=model._meta.db_table, managed=migratable(model))] if model else []
    if isinstance(operation, (ops.RenameModel, ops.AlterModelTable)):
        old_name, new_name = (operation.old_name, operation.new_name) if isinstance(operation, ops.RenameModel) else (operation.name,) * 2
        old, new = model_or_none(before.apps, app_label, old_name), model_or_none(after.apps, app_label, new_name)
        if old is None or new is None:
            return []
        kind = "RenameModel" if isinstance(operation, ops.RenameModel) else "AlterModelTable"
        return [dict(fact, type=kind, old_table=old._meta.db_table, new_table=new._meta.db_table, managed=migratable(old))]
    if isinstance(operation, ops.RemoveField):
        model = model_or_none(before.apps, app_label, operation.model_name)
        field = field_or_none(model, operation.name)
        if field is None:
            return []
        through = field.remote_field.through if field.many_to_many else None
        m2m_table = through._meta.db_table if through is not None and not isinstance(through, str) and through._meta.auto_created else None
        return [dict(fact, type="RemoveField", table=model._meta.db_table, column=field_column(field), m2m_table=m2m_table,
                     managed=migratable(model))]  # fmt: skip
    if isinstance(operation, (ops.RenameField, ops.AlterField)):
        old_name, new_name = (operation.old_name, operation.new_name) if isinstance(operation, ops.RenameField) else (operation.name,) * 2
        old_model = model_or_none(before.apps, app_label, operation.model_name)
        new_model = model_or_none(after.apps, app_label, operation.model_name)
        old_field, new_field = field_or_none(old_model, old_name), field_or_none(new_model, new_name)
        if old_field is None or new_field is None:
            return []
        kind = "RenameField" if isinstance(operation, ops.RenameField) else "AlterField"
        return [dict(fact, type=kind, table=new_model._meta.db_table, old_column=field_column(old_field),
                     new_column=field_column(new_field), old_null=bool(old_field.null), new_null=bool(new_field.null),
                     managed=migratable(old_model))]  # fmt: skip
    if isinstance(operation, ops.AddField):
        model = model_or_none(after.apps, app_label, operation.model_name)
        field = field_or_none(model, operation.name)
        if field is None:
            return []
        return [dict(fact, type="AddField", table=model._meta.db_table, column=field_column(field), null=bool(field.null),
                     db_default=getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED,
                     generated=bool(getattr(field, "generated", False)), m2m=bool(field.many_to_many),
                     managed=migratable(model))]  # fmt: skip
    return []


def describe_migration(loader, migration):
    """What a pending migration does, read from its operations and the project states around it."""
    key = (migration.app_label, migration.name)
    state = loader.project_state(key, at_end=False)
    touched, creates, unknown = set(), [], False
    operations = []
    for operation in migration.operations:
        before_apps = state.apps
        after = state.clone()
        operation.state_forwards(migration.app_label, after)
        op_touched, op_creates, op_unknown = operation_effects(operation, migration.app_label, before_apps, after.apps)
        touched |= {t for t in op_touched if t}
        creates += op_creates
        unknown = unknown or op_unknown
        described = {"type": type(operation).__name__, "describe": operation.describe(), "reversible": reversible(operation)}
        try:  # what the old code could notice (compat.py decides whether it is breaking)
            described["schema"] = schema_facts(operation, migration.app_label, state, after)
        except Exception as exc:  # cannot tell: said, and then not called compatible
            described["schema_error"] = error_message(exc)
        operations.append(described)
        state = after
    return {
        "migration": key_of(migration),
        "app": migration.app_label,
        "name": migration.name,
        "atomic": bool(migration.atomic),
        "initial": bool(getattr(migration, "initial", False)),
        "operations": operations,
        "tables": sorted(touched),
        "tables_unknown": unknown,
        "creates": creates,
        "schema_creating_only": all(op["type"] in SCHEMA_CREATING for op in operations) and bool(operations),
        "irreversible": [op["describe"] for op in operations if not op["reversible"]],
    }


class NeedsDatabase(Exception):
    """Raised instead of connecting while the SQL of missing migrations is generated offline."""


@contextlib.contextmanager
def sql_without_database(connection):
    """Generate SQL the way `sqlmigrate` does but with no database: parameters are quoted client-side
    (Django's PostgreSQL backend merges them with the server's help, psycopg's quoting needs none), and
    any attempt to connect (an operation that reads the live schema, such as a foreign key's constraint
    name) raises NeedsDatabase instead of trying a host the offline container cannot reach."""
    quote = None
    try:
        from django.db.backends.postgresql.psycopg_any import sql as psycopg_sql

        quote = psycopg_sql.quote
    except Exception:  # not the PostgreSQL backend, or an older Django: no client-side quoting
        quote = None
    saved = {name: connection.__dict__.get(name) for name in ("ensure_connection", "connect")}
    saved_compose = connection.ops.__dict__.get("compose_sql")

    def refuse(*_args, **_kwargs):
        raise NeedsDatabase("generating this SQL needs a database connection (it reads the live schema)")

    def compose_sql(statement, params):
        if quote is None:
            raise NeedsDatabase("this database backend cannot quote values without a connection")
        return statement % tuple(quote(value, None) for value in params)

    connection.ensure_connection = refuse
    connection.connect = refuse
    connection.ops.compose_sql = compose_sql
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                connection.__dict__.pop(name, None)
            else:
                setattr(connection, name, value)
        if saved_compose is None:
            connection.ops.__dict__.pop("compose_sql", None)
        else:
            connection.ops.compose_sql = saved_compose


def generated_in_order(changes):
    """The migrations the autodetector generated ({app: [Migration]}), dependencies first."""
    todo = {(m.app_label, m.name): m for migrations in changes.values() for m in migrations}
    ordered = []
    while todo:
        ready = sorted(key for key, m in todo.items() if not any(tuple(dep) in todo for dep in m.dependencies if tuple(dep) != key))
        if not ready:  # a cycle the autodetector would have split: keep a stable order
            ready = sorted(todo)
        for key in ready[:1]:
            ordered.append(todo.pop(key))
    return ordered


def missing_migration_sql(migration, state, connection):
    """The SQL of one generated migration applied to ``state`` (what `sqlmigrate` would print), per
    operation; an operation whose SQL cannot be generated gets ``sql: None`` and an ``error``.
    Returns (entry, state after the migration)."""
    app = migration.app_label
    operations = []
    for operation in migration.operations:
        after = state.clone()
        operation.state_forwards(app, after)
        item = {"type": type(operation).__name__, "describe": operation.describe()}
        try:
            with connection.schema_editor(collect_sql=True, atomic=False) as editor:
                operation.database_forwards(app, editor, state, after)
            item["sql"] = [" ".join(str(s).split()) for s in editor.collected_sql if str(s).strip()]
        except Exception as exc:  # NeedsDatabase, or an operation Django cannot write as SQL here
            item["sql"] = None
            item["error"] = error_message(exc)
        operations.append(item)
        state = after
    if any(op["sql"] for op in operations):
        kind = "sql"
    elif any(op["sql"] is None for op in operations):
        kind = "unknown"
    else:
        kind = "state-only"
    entry = {
        "app": app,
        "name": migration.name,
        "migration": key_of(migration),
        "kind": kind,
        "operations": operations,
        "sql": [s for op in operations for s in op["sql"] or []],
    }
    return entry, state


def missing_migrations(loader, connection=None, offline=True):
    """Model changes with no migration (what `makemigrations --check` reports), classified the way Django
    would decide them: the migrations makemigrations would write (never written: they live in memory
    only) and the SQL `sqlmigrate` would print for them, applied in order after the release's own
    migrations. ``kind`` per generated migration: ``state-only`` (no SQL: options, ordering, verbose
    names, choices, help texts, managers...), ``sql`` (changes the schema: ``sql`` lists it) or ``unknown``
    (its SQL could not be generated, ``offline`` without a database: an operation needed the live schema)."""
    from django.apps import apps
    from django.db import connections
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.questioner import NonInteractiveMigrationQuestioner
    from django.db.migrations.state import ProjectState

    connection = connection or connections["default"]
    questioner = NonInteractiveMigrationQuestioner(specified_apps=(), dry_run=True)
    autodetector = MigrationAutodetector(loader.project_state(), ProjectState.from_apps(apps), questioner)
    changes = autodetector.changes(graph=loader.graph)
    state = loader.project_state()
    entries = []
    guard = sql_without_database(connection) if offline else contextlib.nullcontext()
    with guard:
        for migration in generated_in_order(changes):
            entry, state = missing_migration_sql(migration, state, connection)
            entries.append(entry)
    return entries


def command_analyze(data):
    from django.db.migrations.exceptions import InconsistentMigrationHistory
    from django.db.migrations.executor import MigrationExecutor

    loader = offline_loader(data.get("applied", []))
    result = {"errors": [], "conflicts": {}, "missing_migrations": [], "unknown_applied": []}
    try:
        loader.check_consistent_history(loader.connection)
    except InconsistentMigrationHistory as exc:
        result["errors"].append("inconsistent migration history: %s" % exc)
    conflicts = loader.detect_conflicts()
    if conflicts:
        result["conflicts"] = conflicts
        result["errors"].append(
            "conflicting migrations (several leaf nodes) in %s: run makemigrations --merge" % ", ".join(sorted(conflicts))
        )
    # Missing migrations are not pre-check errors: the strategy decides on them (warning when state-only,
    # abort naming the SQL otherwise) and the rehearsal of the release's own migrations still runs.
    try:
        result["missing_migrations"] = missing_migrations(loader, offline=True)
    except Exception as exc:  # the autodetector can fail on exotic projects: the strategy warns, names it
        result["missing_migrations"] = [{"app": None, "migration": None, "kind": "unchecked", "error": error_message(exc)}]
    known = {"%s.%s" % key for key in loader.graph.nodes}
    for key in loader.replacements.values():
        known |= {"%s.%s" % replaced for replaced in key.replaces}
    result["unknown_applied"] = [key for key in data.get("applied", []) if key not in known]
    executor = MigrationExecutor.__new__(MigrationExecutor)
    executor.loader = loader
    plan = executor.migration_plan(loader.graph.leaf_nodes()) if not conflicts else []
    result["pending"] = [describe_migration(loader, migration) for migration, _backwards in plan]
    return result


class StatementLog:
    """Records every statement a connection runs (text, start, duration) while active.

    The text is what Django's own debug cursor logs: ``connection.ops.last_executed_query()``, which reads the
    query psycopg2 merged (``cursor.query``) or psycopg 3 sent (``cursor._query``), or composes it on a cursor
    of its own (psycopg 3 with server-side binding; Django 4.2 always) - never ``cursor.mogrify()`` on the
    statement's own cursor, which in psycopg 3 replaces the cursor's result (Django's next fetch then fails
    with "result not set")."""

    def __init__(self):
        self.statements = []
        self.origin = time.monotonic()

    def reset(self):
        self.statements = []
        self.origin = time.monotonic()

    def __call__(self, execute, sql, params, many, context):
        started = time.monotonic()
        try:
            return execute(sql, params, many, context)
        finally:
            if len(self.statements) < MAX_STATEMENTS:
                self.statements.append(
                    {
                        "sql": " ".join(str(statement_text(sql, params, many, context)).split())[:2000],
                        "at": round(started - self.origin, 4),
                        "seconds": round(time.monotonic() - started, 4),
                    }
                )


def statement_text(sql, params, many, context):
    """The text of a statement as it ran, with its parameters merged, read the way Django's debug cursor reads
    it (see StatementLog); the statement as written when that cannot be had (executemany, no parameters, or a
    backend that cannot tell)."""
    if params is None or many:
        return sql
    try:
        text = context["connection"].ops.last_executed_query(context["cursor"].cursor, sql, params)
    except Exception:  # a backend that cannot tell: the statement as written will do
        return sql
    return text if isinstance(text, str) and text else sql


def table_description(connection, table):
    """{column: {name: definition}, constraint: {...}, index: {...}} of ``table``, or None if absent."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [quote_ident(table)])
        if cursor.fetchone()[0] is None:
            return None
        cursor.execute(
            """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity
                 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped""",
            [quote_ident(table)],
        )
        columns = {
            name: "%s%s%s%s"
            % (kind, " NOT NULL" if notnull else "", " DEFAULT %s" % default if default else "", " IDENTITY" if identity else "")
            for name, kind, notnull, default, identity in cursor.fetchall()
        }
        cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass", [quote_ident(table)])
        constraints = dict(cursor.fetchall())
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass",
            [quote_ident(table)],
        )
        indexes = dict(cursor.fetchall())
    return {"column": columns, "constraint": constraints, "index": indexes}


def reference_connection():
    """A connection to the reference database on the scratch server (created empty if missing)."""
    from django.db import connections

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [REFERENCE_DB])
        if cursor.fetchone() is None:
            cursor.execute("CREATE DATABASE %s" % quote_ident(REFERENCE_DB))
    if "smart_deploy_reference" not in connections.settings:
        settings = dict(connections.settings["default"])
        settings["NAME"] = REFERENCE_DB
        connections.settings["smart_deploy_reference"] = settings
    return connections["smart_deploy_reference"]


def migrate_reference_to(target):
    """Bring the reference database to the state right after ``target``, from its own migrations."""
    from django.db.migrations.executor import MigrationExecutor

    connection = reference_connection()
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return connection


def prove_fake(connection, migration, description, key):
    """Whether ``migration`` may be faked on this database: every object it creates exists and equals
    what the migration itself creates on a database built from scratch by the release's migrations."""
    tables = sorted({c["table"] for c in description["creates"] if c.get("table")})
    proof = {"objects": description["creates"], "tables": tables, "found": False, "compared_equal": False, "differences": []}
    missing = []
    for create in description["creates"]:
        found = table_description(connection, create["table"])
        if found is None:
            missing.append("table %s" % create["table"])
        elif create["kind"] == "column" and create["column"] not in found["column"]:
            missing.append("column %s.%s" % (create["table"], create["column"]))
        elif (
            create["kind"] in ("index", "constraint") and create["name"] not in found["index"] and create["name"] not in found["constraint"]
        ):
            missing.append("%s %s" % (create["kind"], create["name"]))
    if missing:
        proof["differences"] = ["%s does not exist on the database" % m for m in missing]
        return proof
    proof["found"] = True
    reference = migrate_reference_to(key)
    for table in tables:
        differences = describe_differences(table_description(connection, table), table_description(reference, table) or {})
        proof["differences"] += ["%s: %s" % (table, d) for d in differences]
    proof["compared_equal"] = not proof["differences"]
    return proof


def row_counts(connection, tables):
    counts = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute("SELECT to_regclass(%s)", [quote_ident(table)])
            if cursor.fetchone()[0] is None:
                continue
            cursor.execute("SELECT count(*) FROM %s" % quote_ident(table))
            counts[table] = cursor.fetchone()[0]
    return counts


def relfilenodes(connection, tables):
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname, c.relfilenode FROM pg_class c WHERE c.relname = ANY(%s) AND c.relkind = 'r'", [list(tables)])
        return dict(cursor.fetchall())


def invalid_indexes(connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT i.indisvalid")
        return {row[0] for row in cursor.fetchall()}


def offending_rows(connection, migration, exc_code, before_apps):
    """For data errors, count the rows that make the migration fail (duplicates, NULLs)."""
    from django.db import transaction
    from django.db.migrations import operations as ops
    from django.db.models import NOT_PROVIDED

    found = []
    if exc_code not in ("23505", "23502"):
        return found
    for operation in migration.operations:
        if not isinstance(operation, (ops.AlterField, ops.AddField)):
            continue
        table = table_of(before_apps, migration.app_label, operation.model_name)
        if not table:
            continue
        try:
            column = before_apps.get_model(migration.app_label, operation.model_name)._meta.get_field(operation.name).column
        except Exception:  # a field the migration adds: its column is named after it unless db_column says otherwise
            column = operation.field.db_column or operation.name
        try:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                if isinstance(operation, ops.AddField):
                    field = operation.field  # no default of its own (None or NOT_PROVIDED), none in the database
                    no_default = field.default is None or field.default is NOT_PROVIDED
                    no_default = no_default and getattr(field, "db_default", NOT_PROVIDED) is NOT_PROVIDED
                    if not field.null and no_default:
                        cursor.execute("SELECT count(*) FROM %s" % quote_ident(table))
                        found.append({"table": table, "column": column, "rows_without_value": cursor.fetchone()[0]})
                elif exc_code == "23505" and operation.field.unique:
                    cursor.execute(
                        "SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM %s GROUP BY %s HAVING count(*) > 1) d"
                        % (quote_ident(table), quote_ident(column))
                    )
                    groups, rows = cursor.fetchone()
                    found.append({"table": table, "column": column, "duplicate_values": groups, "rows": int(rows)})
                elif exc_code == "23502" and not operation.field.null:
                    cursor.execute("SELECT count(*) FROM %s WHERE %s IS NULL" % (quote_ident(table), quote_ident(column)))
                    found.append({"table": table, "column": column, "null_rows": cursor.fetchone()[0]})
        except Exception as exc:  # the column may be absent on this side: nothing to count
            found.append({"table": table, "column": column, "not_counted": error_message(exc)})
    return found


def lock_summary(statements, atomic, migration_seconds):
    """Locks each statement takes and how long they were held, from the statement log: in a
    transaction a lock is held until commit, otherwise until the statement ends."""
    held = {}
    for statement in statements:
        mode, relation, _kind = classify_statement(statement["sql"])
        if not mode or not relation:
            continue
        seconds = (migration_seconds - statement["at"]) if atomic else statement["seconds"]
        key = (relation, mode)
        held[key] = max(held.get(key, 0.0), seconds)
    return [{"relation": r, "mode": m, "held_seconds": round(s, 4)} for (r, m), s in sorted(held.items())]


def annotate_statements(statements, existing_tables):
    """Add the relation each statement works on, and whether that relation existed before the release."""
    for statement in statements:
        _mode, relation, _kind = classify_statement(statement["sql"])
        statement["relation"] = relation
        statement["existing_relation"] = bool(relation) and relation in existing_tables
    return statements


def lint_sql(statements):
    """The DDL a SQL linter should see: statements on tables that existed before the release."""
    chosen = [
        s["sql"]
        for s in statements
        if s.get("existing_relation") and not s["sql"].upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE"))
    ]
    return ";\n".join(chosen) + ";" if chosen else ""


ROW_DEPENDENT = ("non-concurrent-index", "column-type-change", "set-not-null", "add-not-null-column", "validating-constraint")


def migration_warnings(entry, description, slow_seconds):
    """Dangerous operations, with figures from the copy. Tables the release itself creates are left out
    (nothing uses them yet), and so are row-dependent risks on tables with no rows."""
    warnings = []
    key = entry["migration"]
    rows = entry.get("rows", {})
    for statement in entry.get("statements", []):
        relation = statement.get("relation")
        if not statement.get("existing_relation"):
            continue
        n = rows.get(relation, 0)
        for kind in statement_warnings(statement["sql"]):
            if kind in ROW_DEPENDENT and not n:
                continue
            if kind == "non-concurrent-index":
                text = "CREATE INDEX without CONCURRENTLY on %s (%d rows): writes blocked for %.3f s on the copy" % (
                    relation,
                    n,
                    statement["seconds"],
                )
            elif kind == "column-type-change":
                text = "column type change on %s (%d rows): ACCESS EXCLUSIVE for %.3f s on the copy" % (
                    relation,
                    n,
                    statement["seconds"],
                )
            elif kind in ("set-not-null", "add-not-null-column"):
                text = "NOT NULL on %s, which has %d rows: scans the table and fails on NULLs" % (relation, n)
            elif kind in ("drop-column", "drop-table", "rename"):
                text = "%s on %s: the release still running during the switch may break" % (kind.replace("-", " "), relation)
            else:
                text = "constraint validated on %s (%d rows) in %.3f s, under lock" % (relation, n, statement["seconds"])
            warnings.append({"migration": key, "rule": kind, "message": text, "seconds": statement["seconds"], "rows": n})
    for rewritten in entry.get("rewritten", []):
        if rewritten in rows and not rows[rewritten]:
            continue  # an empty table is rewritten in no time: nothing waits on its lock
        warnings.append(
            {
                "migration": key,
                "rule": "table-rewrite",
                "message": "table %s (%d rows) was rewritten: ACCESS EXCLUSIVE for the whole rewrite" % (rewritten, rows.get(rewritten, 0)),
                "rows": rows.get(rewritten, 0),
            }
        )
    for operation in description["irreversible"]:
        warnings.append({"migration": key, "rule": "irreversible", "message": "%s has no reverse for: %s" % (key, operation)})
    if not description["atomic"]:
        warnings.append(
            {
                "migration": key,
                "rule": "non-atomic",
                "message": "%s is non-atomic: a failure can leave it half applied; applied on its own, outside the batch" % key,
            }
        )
    if entry.get("seconds", 0) > slow_seconds:
        warnings.append(
            {
                "migration": key,
                "rule": "slow",
                "message": "took %.1f s on the copy" % entry["seconds"],
                "seconds": entry["seconds"],
            }
        )
    return warnings


def command_rehearse(data):
    """Apply the pending migrations on this (scratch) database one at a time, as migrate would."""
    from django.apps import apps as global_apps
    from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    slow_seconds = float(data.get("slow_seconds", 5))
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    descriptions = {d["migration"]: d for d in data.get("descriptions", [])}
    expected = data.get("expected_plan")
    result = {"migrations": [], "warnings": [], "plan": [key_of(m) for m, _b in plan], "faked": [], "errors": []}
    if expected is not None and result["plan"] != expected:
        result["errors"].append("the copy's plan %s differs from the analysed plan %s" % (result["plan"], expected))
        return result
    log = StatementLog()
    existing_tables = set(connection.introspection.table_names())
    emit_pre_migrate_signal(0, False, connection.alias, apps=global_apps, plan=plan)
    executor.recorder.ensure_schema()
    state = executor._create_project_state(with_applied_migrations=True)
    failed = False
    for migration, _backwards in plan:
        key = key_of(migration)
        description = descriptions.get(key) or {
            "tables": [],
            "creates": [],
            "irreversible": [],
            "atomic": migration.atomic,
            "schema_creating_only": False,
        }
        entry = {"migration": key, "atomic": bool(migration.atomic)}
        result["migrations"].append(entry)
        if failed:
            entry["outcome"] = "not reached"
            continue
        tables = description.get("tables", [])
        entry["rows"] = row_counts(connection, tables)
        files_before = relfilenodes(connection, tables)
        invalid_before = invalid_indexes(connection) if not migration.atomic else set()
        before = state.clone()
        log.reset()
        started = time.monotonic()
        try:
            with connection.execute_wrapper(log):
                state = executor.apply_migration(state, migration)
            entry["outcome"] = "applied"
        except Exception as exc:  # every failure is evidence; the strategy decides what it means
            entry["seconds"] = round(time.monotonic() - started, 4)
            entry["error"] = failure(exc)
            entry["statements"] = annotate_statements(log.statements, existing_tables)
            if not migration.atomic:
                entry["cleanup"] = clean_half_applied(connection, invalid_before)
            code = entry["error"]["sqlstate"]
            if entry["error"]["origin"] == SMART_DEPLOY:  # nothing to learn from the copy: the driver broke
                entry["outcome"] = "failed"
                failed = True
                continue
            if code in DUPLICATE_OBJECT and migration.atomic and description.get("schema_creating_only"):
                try:
                    proof = prove_fake(connection, migration, description, (migration.app_label, migration.name))
                except Exception as proof_error:  # no proof is a refusal
                    proof = {
                        "found": False,
                        "compared_equal": False,
                        "differences": ["could not build the reference: %s" % error_message(proof_error)],
                    }
                entry["fake_proof"] = proof
                if proof["found"] and proof["compared_equal"]:
                    executor.record_migration(migration)
                    state = migration.mutate_state(before, preserve=False)
                    entry["outcome"] = "faked"
                    result["faked"].append(key)
                    continue
            entry["offending_rows"] = offending_rows(connection, migration, code, before.apps)
            entry["outcome"] = "failed"
            failed = True
            continue
        entry["seconds"] = round(time.monotonic() - started, 4)
        entry["statements"] = annotate_statements(log.statements, existing_tables)
        entry["locks"] = lock_summary(log.statements, migration.atomic, entry["seconds"])
        entry["lint_sql"] = lint_sql(entry["statements"])
        files_after = relfilenodes(connection, tables)
        entry["rewritten"] = sorted(t for t, node in files_before.items() if t in files_after and files_after[t] != node)
        result["warnings"] += migration_warnings(entry, description, slow_seconds)
    if not failed:
        emit_post_migrate_signal(0, False, connection.alias, apps=state.apps, plan=plan)
        connection.close()
        after = MigrationExecutor(connection)
        remaining = after.migration_plan(after.loader.graph.leaf_nodes())
        result["post_check"] = {"pending_after": [key_of(m) for m, _b in remaining], "ok": not remaining}
        if data.get("missing_migrations"):
            # what the offline analysis could not write (an operation reads the live schema): the copy is now at the
            # release's state, so its schema answers; collect_sql runs nothing, the introspection only reads
            try:
                result["missing_migrations"] = missing_migrations(after.loader, connection, offline=False)
            except Exception as exc:  # the offline classification stands
                result["missing_migrations_error"] = error_message(exc)
    return result


def clean_half_applied(connection, invalid_before):
    """After a non-atomic migration failed: drop the invalid indexes it left (what CREATE INDEX
    CONCURRENTLY leaves behind), and say what was found."""
    connection.close()
    left = sorted(invalid_indexes(connection) - invalid_before)
    with connection.cursor() as cursor:
        for name in left:
            cursor.execute("DROP INDEX CONCURRENTLY IF EXISTS %s" % quote_ident(name))
    return {"invalid_indexes_left": left, "dropped": left, "clean": not (invalid_indexes(connection) - invalid_before)}


def advisory_lock(connection, key):
    """Session-level advisory lock: two applies to the same database never run at once."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])


def advisory_unlock(connection, key):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def set_lock_timeout(connection, value):
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, false)", [value or "0"])


def apply_plan(executor, plan, fake, result):
    """Apply ``plan`` in order (faking the listed keys); returns the final project state."""
    state = executor._create_project_state(with_applied_migrations=True)
    for migration, _backwards in plan:
        key = key_of(migration)
        if key in fake:
            executor.record_migration(migration)
            state = migration.mutate_state(state, preserve=False)
            result["faked"].append(key)
        else:
            state = executor.apply_migration(state, migration)
            result["applied"].append(key)
    return state


def command_apply(data):
    """Apply a validated plan to production: fake exactly the listed migrations, apply the others.

    Every pending migration atomic: ONE transaction for the whole batch (PostgreSQL's DDL is
    transactional), so either all are applied or none. Otherwise one at a time, the backup being the
    way back. An advisory lock keeps two applies apart; lock_timeout keeps a migration from queueing
    behind long transactions (and everybody else behind it), with a few retries; at the end the plan
    must be empty, as `migrate --check` would say."""
    from django.apps import apps as global_apps
    from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
    from django.db import connection, transaction
    from django.db.migrations.executor import MigrationExecutor

    expected = data.get("expected_plan")
    fake = list(data.get("fake", []))
    retries = int(data.get("lock_retries", 3))
    result = {"applied": [], "faked": [], "errors": [], "attempts": 0}
    advisory_lock(connection, int(data.get("advisory_key", 0)))
    try:
        for attempt in range(retries + 1):
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
            keys = [key_of(m) for m, _b in plan]
            if attempt == 0:
                result["plan"] = keys
                if expected is not None and keys != expected:
                    result["errors"].append("production's plan %s is not the validated plan %s" % (keys, expected))
                    return result
                if [k for k in keys if k in fake] != fake:
                    result["errors"].append("the migrations to fake %s are not pending in this order: %s" % (fake, keys))
                    return result
            if not plan:
                break
            batch = all(m.atomic for m, _b in plan)
            result["mode"] = "one transaction" if batch else "one by one (a migration is not atomic)"
            result["attempts"] = attempt + 1
            set_lock_timeout(connection, data.get("lock_timeout", "10s"))
            emit_pre_migrate_signal(0, False, connection.alias, apps=global_apps, plan=plan)
            executor.recorder.ensure_schema()
            started = time.monotonic()
            try:
                if batch:
                    with transaction.atomic(using=connection.alias):
                        state = apply_plan(executor, plan, fake, result)
                else:
                    state = apply_plan(executor, plan, fake, result)
            except Exception as exc:
                code = sqlstate(exc)
                if batch:  # the transaction rolled back: nothing of this attempt stayed
                    result["applied"], result["faked"] = [], []
                if code == "55P03" and attempt < retries:
                    result.setdefault("lock_timeouts", []).append(error_message(exc))
                    time.sleep(min(2**attempt, 10))
                    continue
                done = len(result["applied"]) + len(result["faked"])
                failed_key = keys[done] if done < len(keys) else None
                result["failed"] = dict(failure(exc), migration=failed_key, seconds=round(time.monotonic() - started, 4),
                                        rolled_back=batch)  # fmt: skip
                result["errors"].append("%s failed: %s%s%s" % (failed_key, error_message(exc),
                                        " (the whole batch was rolled back)" if batch else "",
                                        DEFECT_NOTE if result["failed"]["origin"] == SMART_DEPLOY else ""))  # fmt: skip
                return result
            finally:
                set_lock_timeout(connection, None)
            emit_post_migrate_signal(0, False, connection.alias, apps=state.apps, plan=plan)
            break
        executor = MigrationExecutor(connection)
        remaining = executor.migration_plan(executor.loader.graph.leaf_nodes())
        result["check"] = {"pending_after": [key_of(m) for m, _b in remaining], "ok": not remaining}
        if remaining:
            result["errors"].append("migrate --check: still pending after the apply: %s" % result["check"]["pending_after"])
    finally:
        advisory_unlock(connection, int(data.get("advisory_key", 0)))
    return result


SAFE_TO_REVERSE = (
    "CreateModel", "AddField", "AddIndex", "AddIndexConcurrently", "AddConstraint", "AlterUniqueTogether",
    "AlterIndexTogether", "AlterModelOptions", "AlterModelManagers",
)  # fmt: skip


def data_written_since(loader, migration):
    """What reversing ``migration`` would throw away: rows in the tables it created, values other
    than the default in the columns it added."""
    from django.db.migrations import operations as ops
    from django.db.models import NOT_PROVIDED

    apps = loader.project_state((migration.app_label, migration.name), at_end=True).apps
    found = []
    for operation in migration.operations:
        if isinstance(operation, ops.CreateModel):
            model = apps.get_model(migration.app_label, operation.name)
            count = model._default_manager.count()
            if count:
                found.append("table %s has %d rows written since" % (model._meta.db_table, count))
        elif isinstance(operation, ops.AddField):
            model = apps.get_model(migration.app_label, operation.model_name)
            field = model._meta.get_field(operation.name)
            if field.many_to_many:
                count = getattr(model, field.name).through._default_manager.count()
            elif field.default is NOT_PROVIDED:
                count = (
                    model._default_manager.filter(**{field.name + "__isnull": False}).count()
                    if field.null
                    else model._default_manager.count()
                )
            else:
                count = model._default_manager.exclude(**{field.attname: field.get_default()}).count()
            if count:
                found.append("column %s.%s has %d rows with values of their own" % (model._meta.db_table, field.column, count))
    return found


def command_reverse(data):
    """Undo the migrations a deploy applied, when that loses nothing: every operation is one whose
    reverse only drops what the deploy created, and nothing was written there since. Otherwise say
    why, and do nothing (the caller restores the pre-deploy backup instead)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    applied = list(data.get("applied", []))
    before = set(data.get("applied_before", []))
    result = {"safe": False, "reasons": [], "reversed": []}
    if data.get("faked"):
        result["reasons"].append("migrations were faked (%s): unapplying them would drop what existed before" % ", ".join(data["faked"]))
    executor = MigrationExecutor(connection)
    loader = executor.loader
    recorded = {"%s.%s" % key for key in loader.applied_migrations}
    for key in applied:
        app, name = key.split(".", 1)
        migration = loader.graph.nodes.get((app, name))
        if migration is None or key not in recorded:
            result["reasons"].append("%s is not recorded as applied: the database may be half way" % key)
            continue
        for operation in migration.operations:
            if type(operation).__name__ not in SAFE_TO_REVERSE:
                result["reasons"].append("%s: undoing '%s' could lose data" % (key, operation.describe()))
        try:
            result["reasons"] += ["%s: %s" % (key, text) for text in data_written_since(loader, migration)]
        except Exception as exc:  # cannot tell: then it is not safe
            result["reasons"].append("%s: could not check the data written since (%s)" % (key, error_message(exc)))
    if result["reasons"] or not applied:
        if not applied:
            result["reasons"].append("no migration recorded for this deploy")
        return result
    result["safe"] = True
    if data.get("check_only"):
        return result
    targets = []
    for app in sorted({key.split(".", 1)[0] for key in applied}):
        previous = [key for key in data.get("applied_before", []) if key.split(".", 1)[0] == app]
        targets.append((app, previous[-1].split(".", 1)[1] if previous else None))
    advisory_lock(connection, int(data.get("advisory_key", 0)))
    try:
        plan = executor.migration_plan(targets)
        if any(key_of(m) in before for m, _b in plan):
            result["safe"] = False
            result["reasons"].append("reversing would also undo migrations applied before the deploy: %s" % [key_of(m) for m, _b in plan])
            return result
        executor.migrate(targets, plan=plan)
        result["reversed"] = [key_of(m) for m, _b in plan]
    finally:
        advisory_unlock(connection, int(data.get("advisory_key", 0)))
    return result


def command_test(data):
    """The app's test suite with Django's test runner, as `manage.py test <data["args"]>` runs it, but on
    the database the override chose (the runner creates its test database next to it). Result: passed,
    and the counts when the runner is Django's DiscoverRunner or a subclass."""
    from django.conf import settings
    from django.core.management import call_command, load_command_class
    from django.core.management.utils import get_command_line_option
    from django.test.utils import get_runner

    args = [str(arg) for arg in data.get("args", [])]
    testrunner = get_command_line_option(["driver.py", "test"] + args, "--testrunner")
    runner_class = get_runner(settings, testrunner)
    counts = {}
    original = getattr(runner_class, "suite_result", None)
    if original is not None:

        def suite_result(self, suite, result, **kwargs):
            counts.update(
                tests=result.testsRun, failures=len(result.failures), errors=len(result.errors),
                skipped=len(getattr(result, "skipped", [])), expected_failures=len(getattr(result, "expectedFailures", [])),
                unexpected_successes=len(getattr(result, "unexpectedSuccesses", [])),
            )  # fmt: skip
            return original(self, suite, result, **kwargs)

        runner_class.suite_result = suite_result
    command = load_command_class("django.core", "test")
    command.test_runner = testrunner  # what run_from_argv does: the runner's own options are known
    status = 0
    try:
        call_command(command, *args)
    except SystemExit as exc:  # the test command exits 1 when a test failed
        status = exc.code if isinstance(exc.code, int) else 1
    finally:
        if original is not None:
            runner_class.suite_result = original
    return {"passed": status == 0, "status": status, "args": args, "counts": counts}


SETTINGS_DEFAULT = re.compile(r"""environ\.setdefault\(\s*["']DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_][\w.]*)["']""")


def settings_module_in(manage_py):
    """The settings module a manage.py names in its ``os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...)``
    (None when it names none)."""
    match = SETTINGS_DEFAULT.search(manage_py or "")
    return match.group(1) if match else None


def database_line(default):
    """One line for the output: where Django's 'default' database is now (never the password)."""
    return "smart-deploy: Django's database is %s@%s:%s/%s (from SMART_DEPLOY_DB_*, whatever the app's settings read)" % (
        default["USER"] or "-", default["HOST"] or "local socket", default["PORT"] or "default port", default["NAME"])  # fmt: skip


def command_manage(args, environ=None):
    """`driver.py manage <args>`: what `manage.py <args>` runs (Django's execute_from_command_line), on the
    database smart-deploy chose when SMART_DEPLOY_DB_NAME is set. Output and exit status are Django's
    (no RESULT_MARK line): this is for long-running commands such as runserver (./deploy dev).

    Only the settings are touched before Django's command line runs, never django.setup(): runserver sets
    Django up under its autoreloader itself, which keeps watching the code when the app fails to load. The
    autoreloader restarts the process with the same command line and environment, so each process takes
    the override from SMART_DEPLOY_DB_* again. A check right after django.setup(), before any connection,
    refuses to go on when the app's start-up (an AppConfig.ready()) changed the connection settings back
    (under runserver the autoreloader shows the error and keeps watching the code).
    The settings module: DJANGO_SETTINGS_MODULE, else the one the project's manage.py names; the URL
    placeholders pointed at the database (prepare_environment)."""
    environ = os.environ if environ is None else environ
    source = prepare_environment(environ)  # the autoreloader's child inherits what it sets
    try:
        app_databases = import_settings(environ, source)  # connects nowhere
        databases = database_override(environ, app_databases)
    except (ValueError, AppProblem) as exc:
        sys.stderr.write("smart-deploy: %s\n" % exc)
        return 2
    if databases is not None:
        from django.conf import settings

        wanted = copy.deepcopy(databases["default"])
        settings.DATABASES = databases
        settings.DATABASE_ROUTERS = []

        import django

        def refuse_if_undone():
            from django.db import connections, router

            wrong = override_mismatch(wanted, connections.settings, router.routers)
            if wrong:
                raise AppProblem("the database override did not hold after django.setup(): %s" % wrong)

        def setup_then_check(*args, **kwargs):  # Django's command line calls django.setup() by this name
            django_setup(*args, **kwargs)
            refuse_if_undone()

        django_setup = django.setup
        django.setup = setup_then_check
        sys.stderr.write(database_line(databases["default"]) + "\n")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py"] + [str(arg) for arg in args])
    return 0


# --------------------------------------------------------------------------------------------------
# The database the release's own settings reach (issue 24): `driver.py identify`, run in a new container
# of the release (docker exec, the driver's text on stdin) after its health gate and before the switch.
# --------------------------------------------------------------------------------------------------

# Which database a connection reached, as the server says it: the same SQL for the release's container (its own
# settings) and for smart-deploy's own connection to the database it migrated (module_utils/smart_deploy/
# served_database.py compares the two). One JSON object; no value that differs between two connections to the
# same database (a client address, a backend pid) and nothing secret.
IDENTITY_SQL = (
    "SELECT json_build_object('database', current_database(), 'oid', d.oid::text, 'port', current_setting('port'), "
    "'started', (extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint::text, "
    "'started_at', to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "'user', current_user, 'version', current_setting('server_version'), 'in_recovery', pg_is_in_recovery())::text "
    "FROM pg_database d WHERE d.datname = current_database()"
)
# The cluster's system identifier (the same on every server of one cluster, replicas included): readable by any role on
# PostgreSQL's own builds, refused by some managed services - then the other facts decide.
SYSTEM_ID_SQL = "SELECT system_identifier::text FROM pg_control_system()"
ENGINE_NAMES = (("postgis", "PostgreSQL"), ("postgresql", "PostgreSQL"), ("sqlite", "SQLite"), ("mysql", "MySQL"),
                ("oracle", "Oracle"), ("dummy", "no database (Django's dummy backend: DATABASES is empty)"))  # fmt: skip


def engine_label(engine):
    """What kind of database a DATABASES ENGINE is, in words: PostgreSQL (PostGIS and wrappers of either included),
    SQLite, MySQL, Oracle, or the engine itself."""
    if postgresql_engine(engine):
        return "PostgreSQL"
    text = str(engine or "")
    for part, label in ENGINE_NAMES:
        if part in text.lower():
            return label
    return text or "no ENGINE"


def database_settings_summary(alias_settings):
    """One alias of DATABASES as a message shows it: engine, its kind, host, port, name, user, the OPTIONS' keys -
    never the password nor an OPTIONS value (a 'password' or 'passfile' there)."""
    alias_settings = alias_settings if isinstance(alias_settings, dict) else {}
    options = alias_settings.get("OPTIONS")
    return {
        "engine": str(alias_settings.get("ENGINE") or ""),
        "vendor": engine_label(alias_settings.get("ENGINE")),
        "host": str(alias_settings.get("HOST") or ""),
        "port": str(alias_settings.get("PORT") or ""),
        "name": str(alias_settings.get("NAME") or ""),
        "user": str(alias_settings.get("USER") or ""),
        "option_keys": sorted(str(key) for key in options) if isinstance(options, dict) else [],
    }


def process_environment(pid):
    """The environment process ``pid`` was started with (/proc/<pid>/environ): for PID 1 of a container, what its server
    runs with - an entrypoint script's exports included when it execs the server. None when it cannot be read."""
    try:
        with open("/proc/%s/environ" % int(pid), "rb") as handle:
            raw = handle.read()
    except (OSError, ValueError):
        return None
    found = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            key, value = item.split(b"=", 1)
            found[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return found or None


def identify_options(args):
    """``identify``'s arguments: --project-dir DIR (the folder of manage.py, first on sys.path) and --environ-of PID (use
    the environment process PID started with, instead of this process's own)."""
    options, rest = {"project_dir": None, "environ_of": None}, list(args)
    while rest:
        flag = rest.pop(0)
        if flag in ("--project-dir", "--environ-of") and rest:
            options[flag[2:].replace("-", "_")] = rest.pop(0)
        else:
            raise AppProblem("usage: driver.py identify [--project-dir DIR] [--environ-of PID], not %r" % flag)
    return options


def command_identify(args, environ=None):
    """`driver.py identify [--project-dir DIR] [--environ-of PID]`: which database the app's own settings reach, as it
    serves - the settings module and environment of the container (with --environ-of 1, those its main process started
    with), django.setup() as the WSGI application does it (an AppConfig.ready() that changes DATABASES counts), and never
    smart-deploy's SMART_DEPLOY_DB_* override. Prints one RESULT_MARK line:

        databases   every alias: engine, vendor, host, port, name, user, option_keys (never a password)
        identity    of the default alias, when it is PostgreSQL and answered: IDENTITY_SQL's object, system_identifier
        connect_error  when the default alias is PostgreSQL and the connection or the query failed (masked)

    Exit 0 when it could say (a connection that failed included: that is data), 2 when the settings do not load."""
    environ = os.environ if environ is None else environ
    try:
        options = identify_options(args)
    except AppProblem as exc:
        emit({"ok": False, "error": str(exc), "origin": SMART_DEPLOY})
        return 2
    served = process_environment(options["environ_of"]) if options["environ_of"] else None
    if served is not None:
        environ.clear()
        environ.update(served)
    project_dir = options["project_dir"] or os.getcwd()
    if project_dir not in sys.path:
        sys.path.insert(0, project_dir)
    source = "DJANGO_SETTINGS_MODULE"
    if not environ.get("DJANGO_SETTINGS_MODULE"):
        manage_py = os.path.join(project_dir, "manage.py")
        if os.path.exists(manage_py):
            with open(manage_py, encoding="utf-8", errors="replace") as handle:
                found = settings_module_in(handle.read())
            if found:
                environ["DJANGO_SETTINGS_MODULE"], source = found, "%s's default" % manage_py
    result = {"environment": "of process %s" % options["environ_of"] if served is not None else "of the driver's process",
              "settings_module": environ.get("DJANGO_SETTINGS_MODULE") or "", "settings_module_from": source}  # fmt: skip
    passwords = []
    try:
        import django

        django.setup()
        from django.db import connections

        configured = connections.settings
        passwords = [str(alias.get("PASSWORD")) for alias in configured.values() if isinstance(alias, dict) and alias.get("PASSWORD")]
        result["databases"] = {str(alias): database_settings_summary(value) for alias, value in configured.items()}
    except Exception as exc:  # the app's settings or start-up: the app's, said with the settings module
        message = "the release's settings do not load: %s (settings module %s, from %s)" % (
            error_message(exc), environ.get("DJANGO_SETTINGS_MODULE") or "unknown", source)  # fmt: skip
        for secret in passwords:
            message = message.replace(secret, "********")
        emit({"ok": False, "error": message, "origin": APP})
        return 2
    default = configured.get("default")
    if isinstance(default, dict) and postgresql_engine(default.get("ENGINE")):
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute(IDENTITY_SQL)
                row = cursor.fetchone()
                identity = json.loads(row[0]) if isinstance(row[0], str) else dict(row[0])
                try:
                    cursor.execute(SYSTEM_ID_SQL)
                    identity["system_identifier"] = str(cursor.fetchone()[0])
                except Exception as exc:  # a managed service may refuse it: the other facts decide
                    identity["system_identifier_error"] = error_message(exc)
            result["identity"] = identity
        except Exception as exc:
            result["connect_error"] = error_message(exc)
        finally:
            connections.close_all()
    result["ok"] = True
    for secret in passwords:
        result = redact(result, secret)
    emit(result)
    return 0


COMMANDS = {
    "analyze": command_analyze, "rehearse": command_rehearse, "apply": command_apply, "reverse": command_reverse,
    "test": command_test,
}  # fmt: skip
# Commands that take their arguments from the command line and print what Django prints (no JSON).
ARGV_COMMANDS = {"manage": command_manage, "identify": command_identify}


def main(argv):
    if len(argv) > 1 and argv[1] in ARGV_COMMANDS:
        return ARGV_COMMANDS[argv[1]](argv[2:])
    if len(argv) != 2 or argv[1] not in COMMANDS:
        emit({"ok": False, "error": "usage: driver.py {%s}" % "|".join(sorted(COMMANDS))})
        return 2
    try:
        data = read_input()
        database = setup_django()
        result = COMMANDS[argv[1]](data)
        if database is not None:
            result["database"] = database
    except Exception as exc:  # report every failure as data, the module decides
        origin = failure_origin(exc)
        emit({"ok": False, "error": error_message(exc) + (DEFECT_NOTE if origin == SMART_DEPLOY else ""), "sqlstate": sqlstate(exc),
              "origin": origin, "traceback": traceback.format_exc(limit=30)})  # fmt: skip
        return 2
    result["ok"] = True
    emit(result)
    return 1 if result.get("passed") is False else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
