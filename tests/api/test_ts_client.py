"""The TypeScript client (issue 14 item 6): its committed types are what openapi-typescript makes
of the binary's document, a sample program type-checks with tsc (strict) and runs with node
against the real server: register, log in, list products, add to the cart."""
import difflib
import json
import os
import shutil
import subprocess

import pytest

from catalog_util import new_category, new_product
from conftest import REPO_ROOT

CLIENT = REPO_ROOT / "clients" / "typescript"
NODE_MODULES = REPO_ROOT / "tools" / "node" / "node_modules"
API = "/api/v1"
REGENERATE = "clients/typescript/regenerate.sh"


def tool(name):
    p = NODE_MODULES / ".bin" / name
    if not p.exists():
        pytest.fail(f"{p} is missing: run scripts/node-deps.sh (make deps)", pytrace=False)
    return str(p)


def run(args, cwd, env=None, timeout=600):
    p = subprocess.run(args, cwd=str(cwd), env={**os.environ, **(env or {})}, capture_output=True, text=True,
                       timeout=timeout)
    return p


def test_committed_types_are_the_binarys(run_cli, tmp_path, _shared):
    """Fails when a route changed and the types were not regenerated: run clients/typescript/regenerate.sh."""
    p = run_cli("openapi", env={"TEMEL_ENV": "development"})
    assert p.returncode == 0, p.stderr_text
    doc = tmp_path / "openapi.json"
    doc.write_text(p.stdout_text)
    out = tmp_path / "schema.d.ts"
    g = run([tool("openapi-typescript"), str(doc), "-o", str(out)], tmp_path)
    assert g.returncode == 0, g.stdout + g.stderr
    committed = (CLIENT / "src" / "schema.d.ts").read_text()
    fresh = out.read_text()
    if committed != fresh:
        diff = "".join(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True), "committed", "binary",
                                            n=1))
        pytest.fail(f"clients/typescript/src/schema.d.ts is stale: run {REGENERATE}\n{diff[:4000]}", pytrace=False)
    # the served document is the same one plus the test-only routes of TEMEL_ENV=test
    s = _shared.get()
    served = s.get(API + "/openapi.json").json()
    test_only = {rt["pattern"] for rt in s.get(API + "/_test/routes").json()["data"] if rt["test_only"]}
    cli = json.loads(p.stdout_text)
    extra = set(served["paths"]) - set(cli["paths"])
    assert set(cli["paths"]) <= set(served["paths"])
    assert extra and extra <= test_only, extra - test_only
    print(f"schema.d.ts: {len(fresh.splitlines())} lines")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The client and the sample, compiled by tsc (strict) in a scratch copy."""
    d = tmp_path_factory.mktemp("tsclient")
    for name in ("src", "sample"):
        shutil.copytree(CLIENT / name, d / name)
    for name in ("tsconfig.json", "package.json"):
        shutil.copy(CLIENT / name, d / name)
    (d / "node_modules").symlink_to(NODE_MODULES)
    p = run([tool("tsc"), "-p", "."], d)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (d / "dist" / "sample" / "sample.js").exists()
    return d


def test_tsc_rejects_a_wrong_program(built, tmp_path):
    """The type-check can fail: a cart body without product_id and with a string quantity, a path
    the API does not have, and a profile treated as a string are compile errors."""
    bad = built / "sample" / "bad.ts"
    bad.write_text('import { createTemelClient } from "../src/index.js";\n'
                   'const api = createTemelClient({ baseUrl: "http://x" });\n'
                   'api.POST("/api/v1/me/cart", { body: { quantity: "2" } });\n'
                   'api.GET("/api/v1/no-such-route");\n'
                   'api.GET("/api/v1/me").then((r) => { const s: string = r.data!.profile; return s; });\n')
    try:
        p = run([tool("tsc"), "-p", ".", "--noEmit"], built)
    finally:
        bad.unlink()
    assert p.returncode != 0
    out = p.stdout
    assert all(f"bad.ts({n}," in out for n in (3, 4, 5)), out


def test_sample_program_against_the_server(built, server, admin_headers):
    cat = new_category(server, admin_headers)
    prod = new_product(server, admin_headers, cat["slug"], price=2450, stock=7,
                       name={"tr": "Beyaz peynir", "en": "White cheese", "pl": "Biały ser"})
    p = run(["node", "dist/sample/sample.js"], built,
            env={"TEMEL_URL": server.url(""), "CATEGORY": cat["slug"]}, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["user"]["role"] == "user" and out["user"]["email"].startswith("ts-client-")
    assert out["user"]["profile"] == {}
    assert out["token_type"] == "Bearer"
    assert out["problem"]["status"] == 422 and out["problem"]["code"] == "VALIDATION_ERROR"
    assert out["problem"]["request_id"]
    assert out["products"] == {"total": 1, "first": "Beyaz peynir", "price": 2450}
    assert out["line"]["product_id"] == prod["id"] and out["line"]["quantity"] == 2
    assert out["cart"] == {"items": 1, "total": 4900, "currency": "TRY"}
    # the cart really holds it, seen through the API as that user
    login = server.post(API + "/auth/login", json={"email": out["user"]["email"],
                                                  "password": "a long sample password 42"})
    assert login.status_code == 200
    cart = server.get(API + "/me/cart", headers={"Authorization": f"Bearer {login.json()['access_token']}"}).json()
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [(prod["id"], 2)]
