"""The OpenAPI document is complete enough to generate a client (issue 15 item 2).

The document the real binary serves is linted by Redocly (recommended rules: 0 errors), every
route of the router table (read from the binary through the test-only /_test/routes) is in it
with its security requirement and at least one 4xx response, every object schema says what it
holds, and openapi-typescript turns it into types where the known fields are typed.
"""
import json
import os
import re
import subprocess

import pytest

from conftest import REPO_ROOT

API = "/api/v1"
NODE_BIN = REPO_ROOT / "tools" / "node" / "node_modules" / ".bin"
NODE_ENV = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
            "NO_UPDATE_NOTIFIER": "1"}
METHODS = ("get", "post", "put", "patch", "delete")


def tool(name):
    p = NODE_BIN / name
    if not p.exists():
        pytest.fail(f"{p} is missing: run scripts/node-deps.sh (make deps)", pytrace=False)
    return str(p)


@pytest.fixture(scope="module")
def doc_file(tmp_path_factory, _shared):
    s = _shared.get()
    r = s.get(API + "/openapi.json")
    assert r.status_code == 200
    p = tmp_path_factory.mktemp("openapi") / "openapi.json"
    p.write_text(r.text)
    return p


@pytest.fixture(scope="module")
def doc(doc_file):
    return json.loads(doc_file.read_text())


@pytest.fixture(scope="module")
def types(doc_file):
    out = doc_file.with_suffix(".d.ts")
    p = subprocess.run([tool("openapi-typescript"), str(doc_file), "-o", str(out)], env=NODE_ENV,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return out.read_text()


def lint(path):
    p = subprocess.run([tool("redocly"), "lint", str(path), "--format=json", "--max-problems", "10000"],
                       env=NODE_ENV, capture_output=True, text=True, timeout=300)
    out = p.stdout[p.stdout.index("{"):]
    return json.loads(out)


def test_redocly_lint_has_no_errors(doc_file):
    report = lint(doc_file)
    totals = report["totals"]
    problems = [f"{x['severity']} {x['ruleId']}: {x['message']} at {x['location'][0]['pointer']}"
                for x in report["problems"]]
    print(f"redocly lint: {totals['errors']} errors, {totals['warnings']} warnings")
    assert totals["errors"] == 0, "\n".join(problems[:50])


def test_lint_catches_a_broken_document(doc, tmp_path):
    """The lint step can fail: the same document without security and servers has errors."""
    broken = json.loads(json.dumps(doc))
    broken.pop("servers")
    for item in broken["paths"].values():
        for op in item.values():
            op.pop("security", None)
    p = tmp_path / "broken.json"
    p.write_text(json.dumps(broken))
    totals = lint(p)["totals"]
    assert totals["errors"] > 0


@pytest.fixture(scope="module")
def route_table(_shared):
    s = _shared.get()
    r = s.get(API + "/_test/routes")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_every_route_is_in_the_document(doc, route_table):
    missing, no_security, no_4xx, no_summary = [], [], [], []
    assert len(route_table) > 100
    for rt in route_table:
        if rt["hidden"]:
            assert rt["pattern"] not in doc["paths"] or rt["method"].lower() not in doc["paths"][rt["pattern"]]
            continue
        op = doc["paths"].get(rt["pattern"], {}).get(rt["method"].lower())
        name = f"{rt['method']} {rt['pattern']}"
        if op is None:
            missing.append(name)
            continue
        if "security" not in op:
            no_security.append(name)
        elif rt["auth"] == "none" and op["security"] != [] and rt["pattern"] not in ("/health", "/metrics"):
            no_security.append(name + " (public: must be [])")
        elif rt["auth"] in ("user", "staff", "admin") and (not op["security"] or {} in op["security"]):
            no_security.append(name + " (needs a credential)")
        if not [c for c in op["responses"] if re.fullmatch(r"4\d\d", c)]:
            no_4xx.append(name)
        if not op.get("summary") or not op.get("tags"):
            no_summary.append(name)
        if rt["auth"] in ("user", "staff", "admin"):
            assert "401" in op["responses"], name
        if rt["auth"] in ("staff", "admin"):
            assert "403" in op["responses"], name
        if "{" in rt["pattern"]:
            assert "404" in op["responses"], name
        if rt["paginated"]:
            assert "422" in op["responses"], name
    assert not missing, missing
    assert not no_security, no_security
    assert not no_4xx, no_4xx
    assert not no_summary, no_summary
    # the document has nothing the table does not have
    table = {(rt["method"].lower(), rt["pattern"]) for rt in route_table if not rt["hidden"]}
    for path, item in doc["paths"].items():
        for m in item:
            assert (m, path) in table, (m, path)
    assert doc["servers"] and doc["servers"][0]["url"].startswith("http")
    for code, resp in doc["components"]["responses"].items():
        schema = resp["content"]["application/problem+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Problem"}, code
    assert "request_id" in doc["components"]["schemas"]["Problem"]["required"]


def walk_schemas(node, where, out):
    """Every schema object below node, with a readable location."""
    if isinstance(node, dict):
        if node.get("type") == "object" or (isinstance(node.get("type"), list) and "object" in node["type"]):
            out.append((where, node))
        for k, v in node.items():
            walk_schemas(v, f"{where}/{k}", out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk_schemas(v, f"{where}/{i}", out)


def test_every_object_says_what_it_holds(doc):
    """An object schema has properties, or says it is a map (additionalProperties), or is an
    explicitly empty body: never a bare {"type": "object"} (a client would type it as nothing)."""
    found = []
    walk_schemas({"paths": doc["paths"], "components": doc["components"]}, "", found)
    bare = [w for w, s in found
            if not s.get("properties") and not s.get("additionalProperties")
            and not ("properties" in s and s.get("additionalProperties") is False)]
    assert len(found) > 100
    assert not bare, bare


def test_shared_schemas_are_referenced(doc):
    schemas = doc["components"]["schemas"]
    for name in ("Problem", "PageMeta", "User", "Profile", "Product", "Application", "Category"):
        assert name in schemas, sorted(schemas)
    me = doc["paths"][API + "/me"]["get"]["responses"]["2XX"]["content"]["application/json"]["schema"]
    assert me == {"$ref": "#/components/schemas/User"}
    lst = doc["paths"][API + "/products"]["get"]["responses"]["2XX"]["content"]["application/json"]["schema"]
    assert lst["properties"]["data"]["items"] == {"$ref": "#/components/schemas/Product"}
    assert lst["properties"]["meta"] == {"$ref": "#/components/schemas/PageMeta"}
    assert doc["paths"][API + "/products"]["get"]["security"][0] == {}
    create = doc["paths"][API + "/products"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    obj, text = create["properties"]["name"]["oneOf"]
    assert set(obj["properties"]) == {"tr", "en", "pl"} and obj["additionalProperties"] is False
    assert obj["minProperties"] == 1 and obj["properties"]["tr"] == {"type": "string", "minLength": 1, "maxLength": 200}
    assert text["type"] == "string" and text["maxLength"] == 200
    desc = create["properties"]["description"]["oneOf"]
    assert desc[2] == {"type": "null"} and desc[1]["maxLength"] == 10000


def resolve(doc, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def says_what_it_holds(doc, schema, seen=()):
    """A JSON body's schema names its shape: an object with properties (or a typed map), an array of such,
    a scalar type, or a choice among such; never {} or a bare object."""
    if not isinstance(schema, dict):
        return False
    ref = schema.get("$ref")
    if ref:
        return ref in seen or says_what_it_holds(doc, resolve(doc, schema), seen + (ref,))
    for k in ("oneOf", "anyOf", "allOf"):
        if k in schema:
            return all(says_what_it_holds(doc, s, seen) or s == {"type": "null"} for s in schema[k])
    t = schema.get("type")
    types = set(t) if isinstance(t, list) else {t}
    if "object" in types:
        return bool(schema.get("properties")) or isinstance(schema.get("additionalProperties"), dict) \
            or (schema.get("properties") == {} and schema.get("additionalProperties") is False)
    if "array" in types:
        return says_what_it_holds(doc, schema.get("items"), seen)
    return bool(types - {None})


def undescribed(doc, skip=frozenset()):
    """(problems, bodies, bodiless) over every operation's success answers but those in skip
    ((method, path) pairs): see the test below."""
    bad, bodiless, bodies = [], 0, 0
    for path, item in doc["paths"].items():
        for m, op in item.items():
            name = f"{m.upper()} {path}"
            if (m, path) in skip:
                continue
            codes = [c for c in op["responses"] if c[0] in "123"]
            if not codes:
                bad.append(f"{name}: no success response")
            for c in codes:
                resp = op["responses"][c]
                content = resp.get("content")
                if c in ("204", "101") or c.startswith("3"):
                    bodiless += 1
                    if content:
                        bad.append(f"{name}: {c} is bodiless but has content")
                    if c.startswith("3") and c != "304" and "Location" not in resp.get("headers", {}):
                        bad.append(f"{name}: {c} without a Location header")
                    continue
                if not content:
                    bad.append(f"{name}: {c} has no described body")
                    continue
                for media, obj in content.items():
                    schema = obj.get("schema")
                    if not schema:
                        bad.append(f"{name}: {c} {media} without a schema")
                    elif "json" in media and not says_what_it_holds(doc, schema):
                        bad.append(f"{name}: {c} {media} schema does not say what it holds: {schema}")
                    else:
                        bodies += 1
    return bad, bodies, bodiless


def test_every_success_answer_is_described(doc, route_table):
    """Issue 15 item 2: every operation says what a success answers. A 2xx with a body has that body's
    media type and a schema that names its shape (JSON: shared components, objects with properties); a
    bodiless answer is 204, 304, a redirect (3xx with Location) or 101 (upgrade), and has no content. A 2XX
    with nothing under it — what a route without .output or .status gives — fails here, by name.
    Test-only routes (TEMEL_ENV=test machinery, absent from `temel openapi`) are not the contract."""
    test_only = {(rt["method"].lower(), rt["pattern"]) for rt in route_table if rt["test_only"]}
    assert test_only
    bad, bodies, bodiless = undescribed(doc, test_only)
    print(f"{len(bad)} operations whose success answer is not described; {bodies} bodies, {bodiless} bodiless")
    assert not bad, f"{len(bad)} operations whose success answer is not described:\n" + "\n".join(bad)
    assert bodies > 200 and bodiless > 30


def test_the_described_check_can_fail(doc):
    """The walk above flags a bare 2XX, a JSON body of {} or of bare objects, a redirect without Location
    and an operation with no success answer; it passes a 204 and a shared schema."""
    base = {"description": "x"}
    json_body = lambda schema: {**base, "content": {"application/json": {"schema": schema}}}  # noqa: E731
    for responses in ({"2XX": dict(base)}, {"2XX": json_body({})}, {"200": json_body({"type": "object"})},
                      {"200": json_body({"type": "array", "items": {"type": "object"}})},
                      {"302": dict(base)}, {"400": dict(base)}):
        broken = {"paths": {"/x": {"get": {"responses": responses}}}, "components": doc["components"]}
        assert undescribed(broken)[0], responses
    for responses in ({"204": dict(base)}, {"2XX": json_body({"$ref": "#/components/schemas/Problem"})},
                      {"302": {**base, "headers": {"Location": {"schema": {"type": "string"}}}}}):
        good = {"paths": {"/x": {"get": {"responses": responses}}}, "components": doc["components"]}
        assert not undescribed(good)[0], responses


def block(ts, name):
    """The text of `name: {...}` (a components.schemas entry) in the generated types."""
    m = re.search(r"^        " + re.escape(name) + r": \{$", ts, re.M)
    assert m, f"{name} not in the generated types"
    depth, i = 0, m.end() - 1
    for j in range(i, len(ts)):
        depth += ts[j] == "{"
        depth -= ts[j] == "}"
        if depth == 0:
            return ts[i:j + 1]
    raise AssertionError(name)


def test_typescript_types_are_typed(types):
    never = [line for line in types.splitlines() if "Record<string, never>" in line
             and not line.startswith(("export type webhooks", "export type $defs"))]
    # an explicitly empty JSON body ({} with no properties) is the only other place it may appear
    assert all('"application/json": Record<string, never>' in line for line in never), never
    user = block(types, "User")
    assert 'profile: components["schemas"]["Profile"]' in user
    assert "email: string | null" in user and "email_verified: boolean" in user
    assert "[key: string]: unknown" in block(types, "Profile")
    app = block(types, "Application")
    hist = app[app.index("history"):]
    assert re.match(r'history: \{\s+/\*\* @enum \{string\} \*/\s+status: "saved" \|', hist), hist[:200]
    assert "at: string;" in hist
    assert "history: unknown" not in types
    product = block(types, "Product")
    assert re.search(r"\bname: string", product) and re.search(r"\bprice: number", product)
    # a product can be created from the generated types: name is {tr?, en?, pl?} or a string
    assert re.search(r'name: \{\s+tr\?: string;\s+en\?: string;\s+pl\?: string;\s+\} \| string;', types)


DESCRIBED = [
    ("post", "/auth/register"), ("post", "/auth/login"), ("post", "/auth/refresh"), ("post", "/auth/guest"),
    ("get", "/me"), ("patch", "/me"), ("get", "/me/export"), ("get", "/me/sessions"), ("get", "/me/api-keys"),
    ("post", "/me/api-keys"), ("post", "/me/photo"), ("get", "/users"), ("get", "/users/{id}"),
    ("get", "/me/cart"), ("post", "/me/cart"), ("put", "/me/cart/{id}"), ("post", "/me/favorites"),
    ("get", "/products/{id}/reviews"), ("post", "/reviews/{id}/reactions"), ("get", "/blog/posts/{id}/comments"),
    ("post", "/orders"), ("get", "/orders"), ("get", "/orders/{id}"), ("post", "/orders/{id}/pay"),
    ("post", "/webhooks/stripe"), ("post", "/credits/purchases"), ("get", "/credits/balance"),
    ("get", "/credits/transactions"), ("get", "/credits/pricing"), ("get", "/me/subscription"),
    ("post", "/ai/submit"), ("post", "/ai/chat"), ("get", "/ai/jobs"), ("get", "/ai/jobs/{id}"), ("get", "/me/usage"),
    ("get", "/admin/ai/providers"), ("get", "/admin/analytics/ai-usage"), ("get", "/admin/flags"),
    ("get", "/admin/jobs"), ("get", "/admin/queues"), ("get", "/admin/audit-logs"), ("get", "/admin/audit-logs/verify"),
    ("get", "/resumes/{id}/score"), ("post", "/jobs/analyze"), ("get", "/jobs/recommendations"),
    ("patch", "/applications/{id}/status"), ("get", "/analytics/overview"), ("get", "/search"),
]


def test_hand_written_routes_describe_their_responses(doc):
    missing = []
    for method, path in DESCRIBED:
        op = doc["paths"][API + path][method]
        content = op["responses"]["2XX"].get("content", {})
        if not content or not all(c.get("schema") for c in content.values()):
            missing.append(f"{method.upper()} {path}")
    assert not missing, missing
    # list routes carry the envelope with the shared meta
    for path in ("/orders", "/ai/jobs", "/admin/jobs", "/me/sessions"):
        schema = doc["paths"][API + path]["get"]["responses"]["2XX"]["content"]["application/json"]["schema"]
        assert schema["required"] == ["data", "meta"] and schema["properties"]["meta"]["$ref"].endswith("/PageMeta")
    # query parameters a handler reads are declared
    names = {p["name"] for p in doc["paths"][API + "/resumes/{id}/score"]["get"]["parameters"]}
    assert "job_id" in names
