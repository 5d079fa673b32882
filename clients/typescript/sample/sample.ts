/**
 * A sample program: register, log in, find a product, put it in the cart.
 * Run against a server: TEMEL_URL=http://localhost:8080 CATEGORY=<slug> node dist/sample/sample.js
 * It prints one JSON line with what it saw (the API tests read it).
 */
import { createTemelClient, ok, TemelError, type Schemas } from "../src/index.js";

declare const process: { env: Record<string, string | undefined>; exitCode?: number };

async function main(): Promise<void> {
  const baseUrl = process.env["TEMEL_URL"] ?? "http://localhost:8080";
  const category = process.env["CATEGORY"];
  const api = createTemelClient({ baseUrl, language: "tr" });
  const email = `ts-client-${Date.now()}-${Math.floor(Math.random() * 1e9)}@example.com`;
  const password = "a long sample password 42";

  // register: 201 with a session (202 {status: "accepted"} when the address already has an account)
  const registered = await ok(api.POST("/api/v1/auth/register", { body: { email, password, name: "TS Client" } }));
  if (!("access_token" in registered)) throw new Error(`expected a new account, got ${registered.status}`);

  // log in: a fresh token pair
  const session: Schemas["AuthSession"] = await ok(api.POST("/api/v1/auth/login", { body: { email, password } }));
  api.setToken(session.access_token);
  const me: Schemas["User"] = await ok(api.GET("/api/v1/me"));

  // a typed error: the problem document with its request id
  let problem: TemelError | undefined;
  try {
    await ok(api.POST("/api/v1/me/cart", { body: { product_id: "not-a-product", quantity: 1 } }));
  } catch (e) {
    if (e instanceof TemelError) problem = e;
    else throw e;
  }

  // list products (public; names in Turkish), pick one in stock
  const list = await ok(
    api.GET("/api/v1/products", { params: { query: { limit: 10, sort: "price:asc", ...(category ? { category } : {}) } } }),
  );
  const product = list.data.find((p) => p.stock > 0);
  if (!product) throw new Error("no product in stock");

  // add two to the cart, then read the cart
  const line: Schemas["CartLine"] = await ok(
    api.POST("/api/v1/me/cart", { body: { product_id: product.id, quantity: 2 } }),
  );
  const cart = await ok(api.GET("/api/v1/me/cart"));

  console.log(
    JSON.stringify({
      user: { id: me.id, email: me.email, role: me.role, profile: me.profile },
      token_type: session.token_type,
      problem: problem ? { status: problem.status, code: problem.problem?.code, request_id: problem.problem?.request_id } : null,
      products: { total: list.meta.total ?? null, first: product.name, price: product.price },
      line: { id: line.id, product_id: line.product_id, quantity: line.quantity },
      cart: { items: cart.items.length, total: cart.total, currency: cart.currency },
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exitCode = 1;
});
