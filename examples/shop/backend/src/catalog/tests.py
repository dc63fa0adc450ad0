from django.test import TestCase

from .models import Product


class ProductApiTests(TestCase):
    def test_lists_the_seeded_products(self):
        response = self.client.get("/api/products/")
        self.assertEqual(response.status_code, 200)
        skus = [product["sku"] for product in response.json()["results"]]
        self.assertEqual(skus, ["TEA-001", "MUG-001", "POT-001"])

    def test_health_says_the_database_is_reachable(self):
        response = self.client.get("/api/health/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["database"], "reachable")

    def test_prices_are_decimal_strings(self):
        Product.objects.create(sku="CUP-001", name="Cup", price="3.10")
        prices = {p["sku"]: p["price"] for p in self.client.get("/api/products/").json()["results"]}
        self.assertEqual(prices["CUP-001"], "3.10")


class SlowEndpointTests(TestCase):
    def test_answers_after_the_asked_seconds(self):
        response = self.client.get("/api/slow/?seconds=0.05")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["slept"], 0.05)

    def test_refuses_what_is_not_a_number(self):
        self.assertEqual(self.client.get("/api/slow/?seconds=soon").status_code, 400)
