import json
import os
import re

from django.conf import settings
from django.db import connection
from django.http import FileResponse, Http404, HttpResponseBadRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from .models import Ping, Story
from .tasks import ping

SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "release": settings.RELEASE})


@csrf_exempt
def stories(request):
    if request.method == "POST":
        data = json.loads(request.body or b"{}")
        story = Story.objects.create(title=data["title"], status=data.get("status", "draft"))
        return JsonResponse({"id": story.pk}, status=201)
    return JsonResponse({"stories": list(Story.objects.order_by("id").values("id", "title", "status"))})


@csrf_exempt
def upload(request):
    name = request.GET.get("name", "")
    if request.method != "POST" or not SAFE_NAME.match(name):
        return HttpResponseBadRequest("POST a body with ?name=<file name>")
    os.makedirs(settings.MEDIA_ROOT, exist_ok=True)
    with open(os.path.join(settings.MEDIA_ROOT, name), "wb") as handle:
        handle.write(request.body)
    return JsonResponse({"stored": name, "bytes": len(request.body)}, status=201)


def media(request, name):
    path = os.path.join(settings.MEDIA_ROOT, name)
    if not SAFE_NAME.match(name) or not os.path.isfile(path):
        raise Http404(name)
    return FileResponse(open(path, "rb"))


@csrf_exempt
def pings(request):
    if request.method == "POST":
        ping.delay(timezone.now().isoformat())
        return JsonResponse({"queued": True}, status=202)
    return JsonResponse({"done": Ping.objects.count(), "releases": sorted(set(Ping.objects.values_list("release", flat=True)))})


def whoami(request):
    return JsonResponse(
        {"secure": request.is_secure(), "forwarded_proto": request.headers.get("X-Forwarded-Proto", ""), "release": settings.RELEASE}
    )
