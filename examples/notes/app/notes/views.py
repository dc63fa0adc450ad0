import json

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from .models import Note

TITLE_MAX = Note._meta.get_field("title").max_length


@require_GET
def healthz(request):
    """200 while the database answers (with the number of unapplied migrations); 503 when it does not."""
    body = {"status": "ok", "database": "reachable", "release": settings.NOTES_RELEASE}
    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        body.update(status="error", database="unreachable", error=str(exc).strip()[:300])
        return JsonResponse(body, status=503)
    body["migrations"] = {"pending": len(plan)}
    return JsonResponse(body)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def note_list(request):
    """GET: the notes, newest first. POST {"title": ..., "body": ...}: creates one (201)."""
    if request.method == "GET":
        return JsonResponse({"results": [note.as_dict() for note in Note.objects.all()[:100]]})
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "the body must be JSON"}, status=400)
    if not isinstance(data, dict):
        return JsonResponse({"error": "the body must be a JSON object"}, status=400)
    title, body = data.get("title"), data.get("body", "")
    if not isinstance(title, str) or not title.strip():
        return JsonResponse({"error": "title is required"}, status=400)
    if len(title) > TITLE_MAX:
        return JsonResponse({"error": f"title is longer than {TITLE_MAX} characters"}, status=400)
    if not isinstance(body, str):
        return JsonResponse({"error": "body must be a string"}, status=400)
    note = Note.objects.create(title=title.strip(), body=body)
    return JsonResponse(note.as_dict(), status=201)
