from django.db import IntegrityError, transaction
from django.test import TestCase

from .models import Story


class OpenStories(TestCase):
    def test_one_open_story_per_title(self):
        Story.objects.create(title="Budget", status="in_review")
        Story.objects.create(title="Budget", status="published")
        with self.assertRaises(IntegrityError), transaction.atomic():
            Story.objects.create(title="Budget", status="needs_changes")
