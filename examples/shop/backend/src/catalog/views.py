from django.http import JsonResponse

from .models import Product


def product_list(request):
    products = [product.as_dict() for product in Product.objects.all()]
    return JsonResponse({"count": len(products), "results": products})
