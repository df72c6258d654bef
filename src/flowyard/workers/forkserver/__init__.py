"""A warm fork server: flow-run processes forked from an interpreter that imported the engine.

Starting ``python -m flowyard.engine RUN_ID`` costs ~0.3 s of CPU in imports alone. The
process worker instead starts one server per worker (``EngineForkServer``, lazily): a child
``python -u -m flowyard.workers.forkserver --fd N`` that imports the engine once, then,
single-threaded, forks one child per request. Each child is what ``Popen`` would have made:
its own session (pid == process group id), stdout/stderr on the worker's pipes, stdin on
``/dev/null``, fresh signal handlers, the request's cwd and environment. It then calls the
target (``module:function`` with the argv list) and exits with its return value.

Protocol: one ``SOCK_SEQPACKET`` socketpair inherited by the server (no path on disk, so
only the worker can talk to it); each packet is one JSON message::

    worker → server  {"op": "spawn", "id": N, "target": "m:f", "argv": [...],
                      "env": {...}, "cwd": str | null}   + 2 fds (SCM_RIGHTS): stdout, stderr
    server → worker  {"op": "ready", "pid": P}                  once, the engine imported
                     {"op": "spawned", "id": N, "pid": P}       after the child's setsid()
                     {"op": "refused", "id": N, "error": str}   malformed request, fork failed
                     {"op": "exited", "pid": P, "code": C}      reaped; C < 0: killed by -C

EOF ends it: when the worker closes its end (or dies) the server exits; children already
forked keep running, as subprocesses would. When the server dies, every pending ``wait``
fails with ``ForkServerError`` at once: the exit code of those children is unknown (they
are no longer anyone's children the worker can ask), and the caller decides what that means.
"""

from flowyard.workers.forkserver.client import EngineForkServer
from flowyard.workers.forkserver.protocol import DEFAULT_TARGET

__all__ = ["DEFAULT_TARGET", "EngineForkServer"]
