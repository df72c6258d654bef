"""``flowyard.runner``: where deployed code comes from (``flowyard.runner.storage``)."""
