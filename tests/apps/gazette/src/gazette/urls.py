from django.urls import path
from newsroom import views

urlpatterns = [
    path("healthz", views.healthz),
    path("stories/", views.stories),
    path("upload/", views.upload),
    path("media/<str:name>", views.media),
    path("pings/", views.pings),
    path("whoami/", views.whoami),
]
