"""Who may call what: the pure rules of API keys."""

import pytest

from flowyard.orchestrator.auth import (
    KeyCache,
    KeyInfo,
    Role,
    authorize,
    authorize_run,
    key_hash,
    new_key,
)

ADMIN = KeyInfo("ops", Role.ADMIN)
WORKER = KeyInfo("k8s", Role.WORKER, ("k8s-pool", "gpu pool"))
ANY_POOL_WORKER = KeyInfo("any", Role.WORKER)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/work_pools/k8s-pool/claim"),
        ("POST", "/api/work_pools/k8s-pool/workers/heartbeat"),
        ("GET", "/api/work_pools/gpu%20pool"),
        ("GET", "/api/work_pools/k8s-pool/queues"),
        ("POST", "/api/work_pools"),
        ("GET", "/api/flow_runs/abc"),
        ("POST", "/api/flow_runs/abc/state"),
        ("POST", "/api/flow_runs/abc/heartbeat"),
        ("POST", "/api/flow_runs/abc/infrastructure"),
        ("POST", "/api/task_runs"),
        ("POST", "/api/task_runs/t1/state"),
        ("POST", "/api/logs"),
        ("GET", "/api/deployments/abc"),
        ("GET", "/api/blocks/docker-host/prod"),
        ("GET", "/api/health"),
        ("POST", "/api/concurrency_limits/acquire"),
        ("POST", "/api/concurrency_limits/release"),
    ],
)
def test_worker_keys_reach_what_workers_and_engines_need(method, path):
    """A worker key may claim, heartbeat and report for its pools."""
    assert authorize(WORKER, method, path) is None


@pytest.mark.parametrize(
    ("method", "path", "says"),
    [
        ("POST", "/api/work_pools/other/claim", "may only serve the pools k8s-pool, gpu pool"),
        ("PATCH", "/api/work_pools/k8s-pool", "worker key"),
        ("DELETE", "/api/work_pools/k8s-pool", "worker key"),
        ("POST", "/api/work_pools/k8s-pool/queues", "worker key"),
        ("POST", "/api/deployments", "worker key"),
        ("POST", "/api/deployments/abc/runs", "worker key"),
        ("POST", "/api/flow_runs/abc/cancel", "worker key"),
        ("POST", "/api/api_keys", "worker key"),
        ("POST", "/api/blocks", "worker key"),
        ("GET", "/api/api_keys", "worker key"),
        ("POST", "/api/concurrency_limits", "worker key"),
        ("DELETE", "/api/concurrency_limits/db", "worker key"),
    ],
)
def test_worker_keys_cannot_administer(method, path, says):
    """Anything beyond a worker's job is refused, with a reason naming the key."""
    reason = authorize(WORKER, method, path)
    assert reason is not None and says in reason and "'k8s'" in reason


def test_unscoped_worker_key_serves_any_pool():
    """A worker key without pools may serve every pool."""
    assert authorize(ANY_POOL_WORKER, "POST", "/api/work_pools/anything/claim") is None


def test_admin_may_do_anything():
    """The administrator's key passes every rule."""
    assert authorize(ADMIN, "DELETE", "/api/work_pools/x") is None
    assert authorize(ADMIN, "POST", "/api/api_keys") is None


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


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/background_task_runs"),
        ("POST", "/api/background_task_runs/claim"),
        ("POST", "/api/background_task_runs/heartbeat"),
        ("POST", "/api/background_task_runs/t1/state"),
        ("GET", "/api/background_task_runs/t1/wait"),
    ],
)
def test_background_task_runs_are_for_admin_and_worker_keys_not_run_tokens(method, path):
    """Worker keys (whatever their pools) create, claim, report and wait; run tokens may not."""
    assert authorize(WORKER, method, path) is None
    assert authorize_run(method, path) is not None
