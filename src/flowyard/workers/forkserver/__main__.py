"""``python -m flowyard.workers.forkserver --fd N``: the fork server's process."""

import sys

from flowyard.workers.forkserver.server import main

sys.exit(main())
