"""Changes that make "release N+1" of the notes sample (examples/notes, project under app/), the way a
developer would write them: models and the migrations makemigrations gives for them."""

from tests.integration.notes import Notes

SRC = Notes.SRC


def edit(deployment, relative, old, new):
    deployment.edit(relative, old, new)


def add_migration(deployment, app, name, body):
    deployment.add_migration(app, name, body)


# --- an app that had no migrations: tags (table tags_tag), created long ago by migrate --run-syncdb ------
def add_tags_app_without_migrations(deployment, name_length=40):
    deployment.write("%s/tags/__init__.py" % SRC, "")
    deployment.write(
        "%s/tags/models.py" % SRC,
        "from django.db import models\n\n\n"
        "class Tag(models.Model):\n"
        "    name = models.CharField(max_length=%d)\n"
        "    color = models.CharField(max_length=7, default='#999999')\n" % name_length,
    )
    edit(deployment, "notesite/settings.py", '    "notes",\n]', '    "notes",\n    "tags",\n]')


def give_tags_their_migration(deployment, name_length=40):
    deployment.write("%s/tags/migrations/__init__.py" % SRC, "")
    if name_length != 40:
        edit(deployment, "tags/models.py", "max_length=40", "max_length=%d" % name_length)
    add_migration(
        deployment,
        "tags",
        "0001_initial",
        """class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Tag",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=%d)),
                ("color", models.CharField(default="#999999", max_length=7)),
            ],
        ),
    ]
"""
        % name_length,
    )


# --- a field on notes_note: notes.0002_note_pinned ------------------------------------------------------
def add_note_pinned(deployment):
    edit(
        deployment,
        "notes/models.py",
        "    created_at = models.DateTimeField(auto_now_add=True)\n",
        "    created_at = models.DateTimeField(auto_now_add=True)\n    pinned = models.BooleanField(default=False)\n",
    )
    add_migration(
        deployment,
        "notes",
        "0002_note_pinned",
        """class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]

    operations = [
        migrations.AddField(model_name="note", name="pinned", field=models.BooleanField(default=False)),
    ]
""",
    )


# --- unique titles over a table that has duplicates: notes.0003_note_title_unique ------------------------
def make_note_title_unique(deployment, after="0002_note_pinned"):
    edit(
        deployment,
        "notes/models.py",
        "    title = models.CharField(max_length=200)\n",
        "    title = models.CharField(max_length=200, unique=True)\n",
    )
    add_migration(
        deployment,
        "notes",
        "%04d_note_title_unique" % (int(after[:4]) + 1),
        """class Migration(migrations.Migration):
    dependencies = [("notes", "%s")]

    operations = [
        migrations.AlterField(model_name="note", name="title", field=models.CharField(max_length=200, unique=True)),
    ]
"""
        % after,
    )
