"""``flowyard.runner``: deploying and serving flows from Python (``deployments``, behind
``flow.deploy``, ``flow.serve`` and ``flowyard.deployments``), and where deployed code
comes from (``storage``, as ``prefect.runner.storage``)."""
