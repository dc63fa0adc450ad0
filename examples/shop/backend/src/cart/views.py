import json

from catalog.models import Product
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .models import Cart, CartItem


def _json_body(request):
    try:
        return json.loads(request.body or b"{}")
    except ValueError:
        return None


@csrf_exempt
@require_POST
def cart_create(request):
    """POST /api/cart/ -> a new empty cart."""
    cart = Cart.objects.create()
    return JsonResponse(cart.as_dict(), status=201)


@require_GET
def cart_detail(request, cart_id):
    return JsonResponse(get_object_or_404(Cart, pk=cart_id).as_dict())


@csrf_exempt
@require_POST
def cart_add_item(request, cart_id):
    """POST /api/cart/<id>/items/ {"sku": "...", "quantity": 2} -> the cart with the item."""
    cart = get_object_or_404(Cart, pk=cart_id)
    body = _json_body(request)
    if not isinstance(body, dict) or "sku" not in body:
        return JsonResponse({"error": 'expected JSON {"sku": "...", "quantity": N}'}, status=400)
    product = Product.objects.filter(sku=body["sku"]).first()
    if product is None:
        return JsonResponse({"error": f"unknown product {body['sku']!r}"}, status=404)
    quantity = body.get("quantity", 1)
    if not isinstance(quantity, int) or quantity < 1:
        return JsonResponse({"error": "quantity must be a positive integer"}, status=400)
    item, created = CartItem.objects.get_or_create(cart=cart, product=product, defaults={"quantity": quantity})
    if not created:
        item.quantity += quantity
        item.save(update_fields=["quantity"])
    return JsonResponse(cart.as_dict(), status=201)
