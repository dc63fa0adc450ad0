from django.test import TestCase


class CartApiTests(TestCase):
    def test_adding_an_item_twice_adds_up_the_quantity(self):
        cart = self.client.post("/api/cart/").json()
        url = "/api/cart/%d/items/" % cart["id"]
        self.client.post(url, {"sku": "TEA-001", "quantity": 2}, content_type="application/json")
        response = self.client.post(url, {"sku": "TEA-001", "quantity": 1}, content_type="application/json")
        self.assertEqual(response.status_code, 201)
        self.assertEqual(response.json()["items"], [{"product": "TEA-001", "quantity": 3}])

    def test_unknown_product_is_a_404(self):
        cart = self.client.post("/api/cart/").json()
        response = self.client.post("/api/cart/%d/items/" % cart["id"], {"sku": "NOPE"}, content_type="application/json")
        self.assertEqual(response.status_code, 404)

    def test_bad_quantity_is_refused(self):
        cart = self.client.post("/api/cart/").json()
        response = self.client.post("/api/cart/%d/items/" % cart["id"], {"sku": "TEA-001", "quantity": 0}, content_type="application/json")
        self.assertEqual(response.status_code, 400)
