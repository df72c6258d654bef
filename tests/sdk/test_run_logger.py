"""``get_run_logger`` outside runs and inside local runs."""

from __future__ import annotations

import logging

from flowyard import flow, get_run_logger, task


class TestGetRunLogger:
    def test_outside_a_run_it_logs_to_stderr(self, capsys):
        """With no run, the logger still works and writes to stderr."""
        logger = get_run_logger()
        assert isinstance(logger, logging.LoggerAdapter)
        logger.warning("careful %s", "now")
        captured = capsys.readouterr()
        assert "WARNING | flowyard - careful now" in captured.err and captured.out == ""

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
        try:
            raise ValueError("bad")
        except ValueError:
            get_run_logger().exception("failed")
        err = capsys.readouterr().err
        assert "failed" in err and "ValueError: bad" in err
