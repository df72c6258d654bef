"""Example flows shipped with the package, so that ``flowyard demo`` works from any directory.

``etl.py`` is the same file as the repository's ``examples/etl.py`` (a test keeps them equal).
"""
