"""``get_run_logger`` outside runs and inside local runs."""

from __future__ import annotations

import logging

import pytest

import flowyard.logging
from flowyard import flow, get_run_logger, task
from flowyard.errors import MissingContextError


class TestGetRunLogger:
    def test_outside_a_run_it_raises_a_clear_error(self):
        """With no flow or task run, get_run_logger() raises MissingContextError, as Prefect."""
        with pytest.raises(MissingContextError, match="no active flow or task run"):
            get_run_logger()
        with pytest.raises(MissingContextError):
            flowyard.logging.get_run_logger()

    def test_inside_a_flow_it_is_a_logger_adapter(self, capsys):
        """Inside a flow the logger is a LoggerAdapter writing to stderr for local runs."""

        @flow
        def f() -> None:
            logger = get_run_logger()
            assert isinstance(logger, logging.LoggerAdapter)
            logger.warning("careful %s", "now")

        f()
        captured = capsys.readouterr()
        assert "WARNING | Flow run" in captured.err and "careful now" in captured.err
        assert captured.out == ""

    def test_inside_a_task_it_is_labelled_with_the_task_run(self, capsys):
        """Records inside a task name the task run; below-INFO records are filtered out."""

        @task
        def extract_data() -> None:
            get_run_logger().debug("hidden")
            get_run_logger().info("extracting", extra={"rows": 3})

        @flow
        def f() -> None:
            extract_data()

        f()
        err = capsys.readouterr().err
        assert "Task run 'extract_data-0' - extracting" in err
        assert "hidden" not in err

    def test_exceptions_include_their_traceback(self, capsys):
        """logger.exception writes the traceback too."""

        @task
        def t() -> None:
            try:
                raise ValueError("bad")
            except ValueError:
                get_run_logger().exception("failed")

        t()
        err = capsys.readouterr().err
        assert "failed" in err and "ValueError: bad" in err
