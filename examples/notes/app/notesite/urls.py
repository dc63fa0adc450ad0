from django.urls import path
from notes import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("api/notes/", views.note_list, name="note-list"),
]
