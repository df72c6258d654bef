"""SDK benchmarks with no server, for Flowyard and (when available) Prefect.

``python -m bench.sdk [--prefect-python PATH] [--repeat N]``. The same scripts run under
both; only the package name in their imports differs:

- the quick-start (``examples/etl.py``) as a plain script: wall time and peak RSS;
- 10,000 trivial sequential task calls in one flow: tasks/s, and the run's peak RSS;
- 1,000 ``task.map`` elements of a 10 ms I/O task on ``ThreadPoolTaskRunner(max_workers=32)``.

Prefect runs when ``--prefect-python`` is given, ``FLOWYARD_BENCH_PREFECT_PYTHON`` is set,
or ``../prefect-venv/bin/python`` exists; it is never a dependency of this project. It runs
with ``PREFECT_API_URL`` unset (so it starts its temporary local server, as a plain
script does), a throw-away ``PREFECT_HOME`` warmed by one untimed run, and telemetry off.

Every measurement is a fresh interpreter, so wall times include start-up and RSS is the
process's own (``wait4``). Figures go to ``bench/results/sdk.json``; ratios are Prefect ÷
Flowyard for times and memory, Flowyard ÷ Prefect for tasks/s (above 1: Flowyard ahead).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import summary, write_results

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PREFECT_PYTHON = ROOT.parent / "prefect-venv" / "bin" / "python"
QUICK_START = ROOT / "examples" / "etl.py"
QUICK_START_OUTPUT = "Loading data: [10, 20, 30, 40, 50]"

SEQUENTIAL = """
import json, resource, time
from PKG import flow, task

@task
def trivial(n: int) -> int:
    return n

@flow
def many(count: int) -> int:
    total = 0
    for n in range(count):
        total += trivial(n)
    return total

start = time.perf_counter()
assert many(10_000) == sum(range(10_000))
elapsed = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "tasks_per_s": 10_000 / elapsed, "peak_rss_mib": rss}))
"""

MAPPED = """
import json, time
from PKG import flow, task
from PKG.task_runners import ThreadPoolTaskRunner

@task
def io(n: int) -> int:
    time.sleep(0.01)
    return n

@flow(task_runner=ThreadPoolTaskRunner(max_workers=32))
def fan_out() -> int:
    return len(io.map(range(1000)).result())

start = time.perf_counter()
assert fan_out() == 1000
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


@dataclass
class Runner:
    """One SDK under test: its interpreter, package name and environment."""

    python: str
    package: str
    env: dict[str, str]
    stderr_seen: list[str] = field(default_factory=list)

    def run(self, argv: list[str]) -> tuple[float, float, str]:
        """Wall seconds, peak RSS (MiB) and stdout of one child process."""
        with tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [self.python, *argv], stdout=subprocess.PIPE, stderr=err, env=self.env, cwd=ROOT
            )
            assert proc.stdout is not None
            out = proc.stdout.read().decode()
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            err.seek(0)
            self.stderr_seen.append(err.read().decode(errors="replace"))
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise SystemExit(f"{self.package}: {argv} exited with {code}:\n{self.stderr_seen[-1]}")
        return wall, usage.ru_maxrss / 1024, out

    def source(self, template: str) -> str:
        return template.replace("PKG", self.package)

    def quick_start(self, repeat: int) -> dict[str, object]:
        script = QUICK_START.read_text().replace("from flowyard ", f"from {self.package} ")
        with tempfile.NamedTemporaryFile("w", suffix=".py") as copy:
            copy.write(script)
            copy.flush()
            self.run([copy.name])  # warm-up: byte-code caches (and Prefect's database)
            walls, rss = [], []
            for _ in range(repeat):
                wall, peak, out = self.run([copy.name])
                assert QUICK_START_OUTPUT in out, out
                walls.append(wall)
                rss.append(peak)
        return {"wall_s": summary(walls), "peak_rss_mib": max(rss)}

    def script(self, template: str, repeat: int) -> list[dict[str, float]]:
        code = self.source(template)
        return [json.loads(self.run(["-c", code])[2]) for _ in range(repeat)]

    def measure(self, repeat: int) -> dict[str, object]:
        started = time.perf_counter()
        quick = self.quick_start(repeat)
        sequential = self.script(SEQUENTIAL, repeat)
        mapped = self.script(MAPPED, repeat)
        return {
            "quick_start_no_server": quick,
            "sequential_10k_tasks_no_server": {
                "tasks_per_s_median": statistics.median(r["tasks_per_s"] for r in sequential),
            },
            "map_1000_x_10ms_io_thread_runner": {
                "wall_s_median": statistics.median(r["seconds"] for r in mapped),
            },
            "flow_with_10k_task_runs": {
                "peak_rss_mib": max(r["peak_rss_mib"] for r in sequential),
            },
            "bench_seconds": round(time.perf_counter() - started, 1),
        }


def flowyard_runner() -> Runner:
    env = {k: v for k, v in os.environ.items() if k != "FLOWYARD_API_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env["FLOWYARD_HOME"] = tempfile.mkdtemp(prefix="flowyard-bench-home-")
    return Runner(sys.executable, "flowyard", env)


def prefect_runner(python: str) -> Runner:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FLOWYARD_"))}
    env.pop("PYTHONPATH", None)
    env["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-bench-home-")
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["DO_NOT_TRACK"] = "1"
    return Runner(python, "prefect", env)


def prefect_python(given: str | None) -> str | None:
    """The Prefect interpreter: the option, the variable, or ``../prefect-venv``."""
    chosen = given or os.environ.get("FLOWYARD_BENCH_PREFECT_PYTHON")
    if chosen:
        return chosen
    return str(DEFAULT_PREFECT_PYTHON) if DEFAULT_PREFECT_PYTHON.exists() else None


def prefect_mode(runner: Runner) -> str:
    """How Prefect ran, from what it printed."""
    text = "\n".join(runner.stderr_seen)
    if "Starting temporary server" in text:
        return "ephemeral: PREFECT_API_URL unset, so each run started a temporary local server"
    return "no temporary server was reported (see stderr of the runs)"


def ratios(ours: dict[str, object], theirs: dict[str, object]) -> dict[str, float]:
    """Prefect ÷ Flowyard for times and memory, Flowyard ÷ Prefect for throughput."""

    def pick(figures: dict[str, object], *path: str) -> float:
        value: object = figures
        for key in path:
            value = value[key]  # type: ignore[index]
        return float(value)  # type: ignore[arg-type]

    slower = {
        "quick_start_wall": ("quick_start_no_server", "wall_s", "median"),
        "quick_start_peak_rss": ("quick_start_no_server", "peak_rss_mib"),
        "map_1000_wall": ("map_1000_x_10ms_io_thread_runner", "wall_s_median"),
        "flow_10k_tasks_peak_rss": ("flow_with_10k_task_runs", "peak_rss_mib"),
    }
    out = {name: pick(theirs, *p) / pick(ours, *p) for name, p in slower.items()}
    tps = ("sequential_10k_tasks_no_server", "tasks_per_s_median")
    out["sequential_tasks_per_s"] = pick(ours, *tps) / pick(theirs, *tps)
    return {k: round(v, 2) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefect-python", help="a Python with prefect installed")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement")
    args = parser.parse_args()
    load_before = os.getloadavg()
    figures: dict[str, object] = {
        "targets": {
            "quick_start": "<= 0.5 s wall, <= 60 MiB peak RSS",
            "sequential": ">= 5000 tasks/s",
        },
        "flowyard": flowyard_runner().measure(args.repeat),
    }
    python = prefect_python(args.prefect_python)
    if python:
        runner = prefect_runner(python)
        version = subprocess.run(
            [python, "-c", "import prefect; print(prefect.__version__)"],
            capture_output=True, text=True, check=True, env=runner.env,
        ).stdout.strip()  # fmt: skip
        figures["prefect"] = {"version": version, **runner.measure(args.repeat)}
        figures["prefect_mode"] = prefect_mode(runner)
        figures["ratios"] = ratios(figures["flowyard"], figures["prefect"])  # type: ignore[arg-type]
    else:
        figures["prefect"] = "not measured: no Prefect interpreter (see --prefect-python)"
    figures["load_average"] = {"before": load_before, "after": os.getloadavg()}
    write_results("sdk", figures)


if __name__ == "__main__":
    main()
