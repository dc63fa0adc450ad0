from django.urls import path

from . import views

urlpatterns = [
    path("", views.cart_create, name="cart-create"),
    path("<int:cart_id>/", views.cart_detail, name="cart-detail"),
    path("<int:cart_id>/items/", views.cart_add_item, name="cart-add-item"),
]
