import sys

from django.core.management.base import BaseCommand

from newsroom.models import Story


class Command(BaseCommand):
    help = "Add a story; exit with --exit N after it (a data fix that reports a problem)."

    def add_arguments(self, parser):
        parser.add_argument("title")
        parser.add_argument("--status", default="draft")
        parser.add_argument("--exit", type=int, default=0)

    def handle(self, title, status, exit, **options):
        story = Story.objects.create(title=title, status=status)
        self.stdout.write("added story %d: %s (%s)" % (story.pk, story.title, story.status))
        if exit:
            sys.stdout.flush()
            sys.exit(exit)
