from django.db import models


class Cart(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)

    def as_dict(self):
        items = [item.as_dict() for item in self.items.select_related("product")]
        return {"id": self.pk, "items": items}


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, related_name="items", on_delete=models.CASCADE)
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "cart_item"

    def as_dict(self):
        return {"product": self.product.sku, "quantity": self.quantity}
