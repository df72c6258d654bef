"""``flowyard.task_runners``: where submitted and mapped task runs execute (as
``prefect.task_runners``).

``ThreadPoolTaskRunner(max_workers=N)`` is the default; ``ConcurrentTaskRunner`` is
Prefect 2's name for the same thing. ``ProcessPoolTaskRunner(max_workers=N)`` runs them
in a pool of subprocesses. ``DaskTaskRunner`` runs them on a Dask cluster
(``pip install 'flowyard[dask]'``), ``RayTaskRunner`` as Ray tasks (``pip install
'flowyard[ray]'``; ``with remote_options(num_cpus=2):`` gives the task runs submitted
inside Ray's options, as ``prefect_ray.context.remote_options``); the engine itself is
imported only when a runner is made.
"""

from flowyard.sdk.context import TaskRunner, ThreadPoolTaskRunner
from flowyard.sdk.dask_runner import DaskTaskRunner, get_dask_client
from flowyard.sdk.process_runner import ProcessPoolTaskRunner
from flowyard.sdk.ray_runner import RayTaskRunner, remote_options

ConcurrentTaskRunner = ThreadPoolTaskRunner

__all__ = [
    "ConcurrentTaskRunner",
    "DaskTaskRunner",
    "ProcessPoolTaskRunner",
    "RayTaskRunner",
    "TaskRunner",
    "ThreadPoolTaskRunner",
    "get_dask_client",
    "remote_options",
]
