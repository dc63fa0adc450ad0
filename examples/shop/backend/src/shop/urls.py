from django.urls import include, path

from . import views

urlpatterns = [
    path("api/health/", views.health, name="health"),
    path("api/slow/", views.slow, name="slow"),
    path("api/products/", include("catalog.urls")),
    path("api/cart/", include("cart.urls")),
]
