"""``flowyard.utilities``: helpers Prefect users import from ``prefect.utilities``."""
