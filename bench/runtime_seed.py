#!/usr/bin/python3
"""Seed a running temel for bench/runtime.sh, through the API only:

  bench/runtime_seed.py URL OUTDIR [PRODUCTS [USERS]]

- products: as bench/catalog_setup.py (bootstrap admin from $TEMEL_ADMIN_EMAIL/$TEMEL_ADMIN_PASSWORD),
  until there are PRODUCTS (default 10000) over the seven categories;
- USERS (default 1000) shoppers registered through POST /auth/register, each with its own token.
Writes OUTDIR/products.ids (one product id a line), OUTDIR/tokens (one access token a line, for
bench/runtime.lua) and OUTDIR/users.tsv (user id, session id, email: the JWT's sub and sid, for the
pgbench scripts and the login loop)."""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from catalog_setup import PASSWORD, call, parallel, product_ids, seed_products  # noqa: E402


def claims(token):
    p = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def main():
    base, out = sys.argv[1], sys.argv[2]
    want = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    nusers = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    os.makedirs(out, exist_ok=True)
    seed_products(base, want)
    ids = product_ids(base)
    users = [None] * nusers
    tag = os.urandom(4).hex()

    def register(i):
        email = f"bench-{tag}-{i:04d}@example.com"
        tok = call(base, "POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD, "name": f"bench {i}"})
        c = claims(tok["access_token"])
        users[i] = (tok["access_token"], c["sub"], c["sid"], email)

    parallel(nusers, register)
    with open(os.path.join(out, "products.ids"), "w") as f:
        f.write("\n".join(ids) + "\n")
    with open(os.path.join(out, "tokens"), "w") as f:
        f.write("\n".join(u[0] for u in users) + "\n")
    with open(os.path.join(out, "users.tsv"), "w") as f:
        f.write("".join(f"{u[1]}\t{u[2]}\t{u[3]}\n" for u in users))
    print(f"bench: {base}: {len(ids)} products, {nusers} users", file=sys.stderr)


if __name__ == "__main__":
    main()
