import os

from celery import shared_task
from django.utils.dateparse import parse_datetime

from .models import Ping


@shared_task
def ping(sent):
    Ping.objects.create(sent=parse_datetime(sent), release=os.environ.get("APP_RELEASE", "unknown"))
