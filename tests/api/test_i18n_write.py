"""i18n fields on write (issue 11 item 5, the contract part): a product's `name`/`description`
take {"tr","en","pl"} or a plain string, stored as the request's language (Accept-Language,
default en, API.md §1); an update with a string changes only that language."""
import pytest

from catalog_util import new_category, uniq
from conftest import assert_problem, error_fields

API = "/api/v1"


@pytest.fixture
def category(server, admin_headers):
    return new_category(server, admin_headers)["slug"]


def read_name(server, pid, lang):
    r = server.get(f"{API}/products/{pid}", headers={"Accept-Language": lang})
    assert r.status_code == 200, r.text
    return r.json()["name"], r.json()["description"]


def test_plain_string_is_stored_as_the_request_language(server, admin_headers, category):
    name = uniq("peynir")
    r = server.post(f"{API}/products", json={"category": category, "price": 100, "name": name,
                                             "description": "tam yağlı"},
                    headers={**admin_headers, "Accept-Language": "tr"})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["name"] == name and r.json()["description"] == "tam yağlı"
    # stored under tr: a Turkish reader gets it, others fall back to the only text there is
    assert read_name(server, pid, "tr") == (name, "tam yağlı")
    # adding English with a string keeps Turkish
    tag = server.get(f"{API}/products/{pid}", headers={"Accept-Language": "en"}).headers["ETag"]
    r = server.patch(f"{API}/products/{pid}", json={"name": "Cheese"},
                     headers={**admin_headers, "Accept-Language": "en", "If-Match": tag})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Cheese"
    assert read_name(server, pid, "tr")[0] == name
    assert read_name(server, pid, "en")[0] == "Cheese"
    # Polish: not given, falls back to English
    assert read_name(server, pid, "pl")[0] == "Cheese"
    r = server.patch(f"{API}/products/{pid}", json={"name": "Ser"},
                     headers={**admin_headers, "Accept-Language": "pl-PL,pl;q=0.9"})
    assert r.status_code == 200, r.text
    assert [read_name(server, pid, lang)[0] for lang in ("tr", "en", "pl")] == [name, "Cheese", "Ser"]
    # an object still replaces the whole value
    r = server.patch(f"{API}/products/{pid}", json={"name": {"en": "Only English"}}, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert [read_name(server, pid, lang)[0] for lang in ("tr", "en", "pl")] == ["Only English"] * 3


def test_default_language_is_english(server, admin_headers, category):
    r = server.post(f"{API}/products", json={"category": category, "price": 100, "name": "Olive oil"},
                    headers=admin_headers)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    # a later Turkish string adds tr next to the en the first write stored
    r = server.patch(f"{API}/products/{pid}", json={"name": "Zeytinyağı"},
                     headers={**admin_headers, "Accept-Language": "tr"})
    assert r.status_code == 200
    assert read_name(server, pid, "en")[0] == "Olive oil"
    assert read_name(server, pid, "tr")[0] == "Zeytinyağı"
    # searchable in the stored language
    hits = server.get(f"{API}/products", params={"q": "Zeytinyağı", "category": category}).json()["data"]
    assert [h["id"] for h in hits] == [pid]


@pytest.mark.parametrize("bad", ["", "x" * 201, 5, ["Peynir"], {"de": "Käse"}, {}, {"tr": 1}, None])
def test_bad_i18n_values_are_422(server, admin_headers, category, bad):
    body = {"category": category, "price": 100, "name": bad}
    b = assert_problem(server.post(f"{API}/products", json=body, headers=admin_headers), 422)
    assert "name" in error_fields(b), b


def test_string_on_a_nullable_i18n_field_and_null(server, admin_headers, category):
    r = server.post(f"{API}/products", json={"category": category, "price": 1, "name": {"en": "A"},
                                             "description": None}, headers=admin_headers)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["description"] is None
    r = server.patch(f"{API}/products/{pid}", json={"description": "now described"},
                     headers={**admin_headers, "Accept-Language": "en"})
    assert r.status_code == 200 and r.json()["description"] == "now described"


def test_category_names_take_a_string_too(server, admin_headers):
    slug = uniq("cat")
    r = server.post(f"{API}/categories", json={"slug": slug, "name": "Bakliyat"},
                    headers={**admin_headers, "Accept-Language": "tr"})
    assert r.status_code == 201, r.text
    got = server.get(f"{API}/categories/{r.json()['id']}", headers={"Accept-Language": "tr"})
    assert got.status_code == 200 and got.json()["name"] == "Bakliyat"
