"""What the benchmarks share: a real embedded server, figures, and the results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.workers.process import ProcessWorker

RESULTS = Path(__file__).parent / "results"

FLOWS = """
import os
import time
from pathlib import Path

from flowyard import flow, task


@task
def one() -> int:
    return 1


@flow(name="trivial")
def trivial() -> int:
    return one()


@flow(name="hold")
def hold(seconds: float = 5.0) -> None:
    time.sleep(seconds)
"""


@contextmanager
def embedded_server(env: dict[str, str] | None = None) -> Iterator[tuple[ServerProcess, Path]]:
    """``flowyard server start`` on SQLite + a managed Redis in a temp folder, plus a flows dir."""
    home = Path(tempfile.mkdtemp(prefix="flowyard-bench-"))
    (home / "flows.py").write_text(FLOWS)
    server = ServerProcess(home / "home", env=env)
    try:
        server.wait_ready()
        yield server, home
    finally:
        server.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_deployment(api, pool: str, flows_dir: Path, function: str = "trivial") -> s.Deployment:
    template = ProcessWorker.default_base_job_template()
    api.create_work_pool(s.WorkPoolCreate(name=pool, type="process", base_job_template=template))
    return api.create_deployment(
        s.DeploymentCreate(
            name=function,
            flow_name=function,
            entrypoint=f"flows.py:{function}",
            path=str(flows_dir),
            pool_name=pool,
        )
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "median": statistics.median(values),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def write_results(name: str, figures: dict[str, object]) -> Path:
    """Print the figures and write them as JSON under bench/results/."""
    RESULTS.mkdir(exist_ok=True)
    document = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # the machine is shared: the 1, 5 and 15 minute load averages as the bench ended
            "load_average": [round(load, 2) for load in os.getloadavg()],
        },
        **figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))
    return path


def rss_mib(pids: list[int]) -> float:
    """Resident memory of these processes, in MiB (from /proc)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def api_requests(url: str) -> dict[str, float]:
    """The server's requests so far by route (``flowyard_api_requests_total`` of /metrics)."""
    import httpx

    counts: dict[str, float] = {}
    prefix = 'flowyard_api_requests_total{route="'
    for line in httpx.get(f"{url}/metrics", timeout=60).text.splitlines():
        if line.startswith(prefix):
            route, _, value = line[len(prefix) :].rpartition('"} ')
            counts[route] = float(value)
    return counts


def requests_per_run(before: dict[str, float], after: dict[str, float], runs: int) -> dict:
    """API requests per run between two ``api_requests`` readings: in all and by route."""
    spent = {route: after[route] - before.get(route, 0.0) for route in after}
    by_route = {r: round(n / runs, 2) for r, n in sorted(spent.items(), key=lambda kv: -kv[1])}
    return {"all": round(sum(spent.values()) / runs, 2), "by_route": by_route}
