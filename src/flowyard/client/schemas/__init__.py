"""``flowyard.client.schemas``, as ``prefect.client.schemas``: the filter objects and sort
orders ``get_client().read_flow_runs`` takes (``filters``, ``sorting``)."""
