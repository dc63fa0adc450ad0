// Lists the products from the backend API.
async function load() {
  const list = document.getElementById("products");
  try {
    const [products, health] = await Promise.all([
      fetch("/api/products/").then((r) => r.json()),
      fetch("/api/health/").then((r) => r.json()),
    ]);
    document.getElementById("release").textContent = `release ${health.release}`;
    list.replaceChildren(
      ...products.results.map((p) => {
        const li = document.createElement("li");
        li.textContent = `${p.name}`;
        const price = document.createElement("span");
        price.textContent = `${p.price} EUR`;
        li.appendChild(price);
        return li;
      }),
    );
  } catch (err) {
    list.innerHTML = "<li>The shop is unavailable right now.</li>";
  }
}
load();
