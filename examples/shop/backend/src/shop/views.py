import time

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse


def health(request):
    """200 when the database answers and no migration is pending; 503 otherwise."""
    body = {"release": settings.APP_RELEASE}
    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        body.update(status="error", database="unreachable", error=str(exc).strip()[:300])
        return JsonResponse(body, status=503)
    pending = [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]
    body.update(
        status="ok" if not pending else "migrations-pending",
        database="reachable",
        migrations={"pending": len(pending), "names": pending},
    )
    return JsonResponse(body, status=200 if not pending else 503)


def slow(request):
    """GET /api/slow/?seconds=N (0-10, default 2): answers after N seconds, like a slow report would.
    Load tests use it for a request that is still in flight when the proxy switches releases."""
    try:
        seconds = min(max(float(request.GET.get("seconds", "2")), 0.0), 10.0)
    except ValueError:
        return JsonResponse({"error": "seconds must be a number"}, status=400)
    time.sleep(seconds)
    return JsonResponse({"release": settings.APP_RELEASE, "slept": seconds})
