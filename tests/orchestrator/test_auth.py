"""Who may call what: keys, and the one table of rules every route is checked against."""

from fastapi.routing import APIRoute

from flowyard.orchestrator.app import create_app
from flowyard.orchestrator.auth import KeyCache, KeyInfo, Role, key_hash, new_key
from flowyard.orchestrator.authority import RULES
from flowyard.settings import Settings
from flowyard.ui import pages

ADMIN = KeyInfo("ops", Role.ADMIN)


def test_every_route_has_a_rule_and_every_rule_a_route(tmp_path):
    """A new route without a rule would be closed to all but admins: the table stays whole,
    the web UI's routes (not in the OpenAPI document) included."""
    app = create_app(Settings(home=tmp_path), redis_url="redis://127.0.0.1:1")
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    hidden = {  # the web UI's routes, kept out of the OpenAPI document (they answer HTML)
        (method, route.path)
        for router in pages.ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and not route.include_in_schema
        for method in route.methods
    }
    assert ("GET", "/ui/runs") in hidden and not hidden & routes
    assert routes | hidden == set(RULES)


def test_keys_are_random_and_hashed():
    """Keys differ every time and only their hash is kept."""
    first, second = new_key(), new_key()
    assert first != second and first.startswith("fy_") and len(first) > 40
    assert key_hash(first) != first and len(key_hash(first)) == 64


def test_cache_forgets_after_its_ttl():
    """A cached verdict is used until its time to live runs out."""
    cache = KeyCache(ttl=0.0)
    cache.put("digest", ADMIN)
    assert cache.get("digest") == (False, None)
    cache = KeyCache(ttl=60)
    cache.put("digest", ADMIN)
    assert cache.get("digest") == (True, ADMIN)
