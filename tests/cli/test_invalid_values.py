"""A value the API's documents refuse, given on the command line, is one line, not a
traceback, and no request is made (nothing listens on the URL: a request would fail
differently)."""

from __future__ import annotations

import os
import subprocess
import sys

from flowyard.cli.processes import free_port


def test_a_tag_with_a_control_character_is_one_line_and_sends_nothing():
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "flowyard", "deployment", "run", "f/d", "--tag", "a\tb"],
        env={**os.environ, "FLOWYARD_API_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        "Error: tags.0: contains the character U+0009, which is not allowed; nothing was sent"
    )
