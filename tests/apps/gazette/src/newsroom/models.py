from django.db import models
from django.db.models import Q


class Story(models.Model):
    STATUS = [("draft", "Draft"), ("in_review", "In review"), ("needs_changes", "Needs changes"), ("published", "Published")]

    title = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=STATUS, default="draft")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One story per title still being worked on (what Wagtail's workflow states do): a partial unique
            # index whose predicate PostgreSQL prints differently after a dump and restore.
            models.UniqueConstraint(
                fields=["title"], condition=Q(status__in=["in_review", "needs_changes"]), name="one_open_story_per_title"
            ),
        ]


class Ping(models.Model):
    """A row the Celery worker writes: proof that the worker runs and reaches the database and Redis."""

    sent = models.DateTimeField()
    done = models.DateTimeField(auto_now_add=True)
    release = models.CharField(max_length=64)
