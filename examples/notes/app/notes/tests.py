import json
import os
from unittest import mock

from django.db import OperationalError
from django.test import SimpleTestCase, TestCase
from notesite import settings as notes_settings

from .models import Note


class HealthzTests(TestCase):
    def test_reports_a_reachable_database_and_no_pending_migration(self):
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["database"], "reachable")
        self.assertEqual(body["migrations"], {"pending": 0})
        self.assertIn("release", body)

    def test_answers_503_when_the_database_is_unreachable(self):
        with mock.patch("notes.views.connection.ensure_connection", side_effect=OperationalError("no route")):
            response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["database"], "unreachable")


class NotesApiTests(TestCase):
    def post(self, payload):
        return self.client.post("/api/notes/", data=json.dumps(payload), content_type="application/json")

    def test_creates_a_note_and_lists_it_first(self):
        Note.objects.create(title="older", body="")
        response = self.post({"title": "  shopping  ", "body": "tea, milk"})
        self.assertEqual(response.status_code, 201)
        created = response.json()
        self.assertEqual((created["title"], created["body"]), ("shopping", "tea, milk"))
        listed = self.client.get("/api/notes/").json()["results"]
        self.assertEqual([note["title"] for note in listed], ["shopping", "older"])
        self.assertEqual(Note.objects.get(pk=created["id"]).body, "tea, milk")

    def test_refuses_a_note_without_title(self):
        self.assertEqual(self.post({"body": "no title"}).status_code, 400)
        self.assertEqual(self.post({"title": "   "}).status_code, 400)
        self.assertEqual(Note.objects.count(), 0)

    def test_refuses_what_is_not_json(self):
        response = self.client.post("/api/notes/", data="title=x", content_type="application/x-www-form-urlencoded")
        self.assertEqual(response.status_code, 400)

    def test_other_methods_are_not_allowed(self):
        self.assertEqual(self.client.delete("/api/notes/").status_code, 405)


class DatabaseSettingsTests(SimpleTestCase):
    def test_url_user_password_and_name_are_unquoted(self):
        db = notes_settings.database_from_url("postgres://note%40s:p%2Fa%40ss%3Aw@db.example:6543/my%20notes?sslmode=require")
        self.assertEqual(
            (db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]),
            ("db.example", "6543", "my notes", "note@s", "p/a@ss:w"),
        )
        self.assertEqual(db["OPTIONS"], {"sslmode": "require"})

    def test_url_port_defaults_to_5432(self):
        self.assertEqual(notes_settings.database_from_url("postgresql://u:p@h/n")["PORT"], "5432")

    def test_url_of_another_scheme_is_refused(self):
        with self.assertRaises(RuntimeError):
            notes_settings.database_from_url("mysql://u:p@h/n")

    def test_parts_come_only_from_notes_names(self):
        env = {
            "NOTES_DB_HOST": "notes-db",
            "NOTES_DB_NAME": "n",
            "NOTES_DB_USER": "u",
            "NOTES_DB_PASSWORD": "pw",
            "POSTGRES_HOST": "wrong",
            "POSTGRES_DB": "wrong",
            "POSTGRES_USER": "wrong",
            "POSTGRES_PASSWORD": "wrong",
            "DATABASE_URL": "postgres://wrong:wrong@wrong/wrong",
        }
        with mock.patch.dict(os.environ, env, clear=True):
            db = notes_settings.database_from_parts()
        self.assertEqual((db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]), ("notes-db", "5432", "n", "u", "pw"))
