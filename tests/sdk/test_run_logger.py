"""``get_run_logger`` outside runs and inside local runs."""

from __future__ import annotations

import logging

import pytest

import flowyard.logging
from flowyard import flow, get_run_logger, task
from flowyard.errors import MissingContextError


class TestGetRunLogger:
    def test_outside_a_run_it_raises_a_clear_error(self):
        """With no flow or task run, get_run_logger() raises MissingContextError, as Prefect
        (Prefect's ``test_run_logger_fails_outside_context``)."""
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


class TestRunLoggersInTheLoggingHierarchy:
    """Run loggers are standard loggers, as Prefect's ``prefect.flow_runs``/``task_runs``."""

    def test_flow_and_task_records_reach_caplog_with_run_attributes(self, caplog):
        """Records propagate to the root (caplog) from ``flowyard.flow_runs`` and
        ``flowyard.task_runs`` with the run's names and ids as attributes (Prefect's
        ``test_run_logger_in_flow``, ``test_run_logger_in_task``,
        ``test_run_logger_with_flow_run_context_without_parent_flow_run_id``)."""

        @task(name="extract")
        def extract() -> None:
            get_run_logger().info("in the task")

        @flow(name="etl", flow_run_name="nightly")
        def etl() -> None:
            get_run_logger().info("in the flow")
            extract()

        with caplog.at_level(logging.INFO):
            etl()
        by_message = {r.getMessage(): r for r in caplog.records}
        in_flow, in_task = by_message["in the flow"], by_message["in the task"]
        assert in_flow.name == "flowyard.flow_runs"
        assert (in_flow.flow_run_name, in_flow.flow_name) == ("nightly", "etl")
        assert not hasattr(in_flow, "task_run_name")
        assert in_task.name == "flowyard.task_runs"
        assert (in_task.flow_run_name, in_task.flow_name) == ("nightly", "etl")
        assert (in_task.task_run_name, in_task.task_name) == ("extract-0", "extract")
        assert in_task.flow_run_id == in_flow.flow_run_id and in_task.task_run_id
        assert "flowyard.task_runs" in caplog.text and "in the task" in caplog.text

    def test_extra_is_what_prefects_adapters_carry(self):
        """``logger.extra`` holds exactly Prefect's keys for a flow run and a task run
        (Prefect's ``test_run_logger_in_flow``, ``test_run_logger_in_task``)."""

        @task
        def t() -> dict:
            return dict(get_run_logger().extra)

        @flow(name="f")
        def f() -> tuple[dict, dict]:
            return dict(get_run_logger().extra), t()

        flow_extra, task_extra = f()
        assert flow_extra == {
            "flow_run_name": flow_extra["flow_run_name"],
            "flow_run_id": flow_extra["flow_run_id"],
            "flow_name": "f",
            "deployment_name": None,
        }
        assert task_extra == {
            "task_run_name": "t-0",
            "task_run_id": task_extra["task_run_id"],
            "flow_run_id": flow_extra["flow_run_id"],
            "flow_run_name": flow_extra["flow_run_name"],
            "flow_name": "f",
            "task_name": "t",
        }

    def test_keyword_arguments_are_added_to_extra(self):
        """``get_run_logger(foo=..., flow_name=...)`` adds and overrides keys
        (Prefect's ``test_run_logger_extra_data``)."""

        @flow(name="f")
        def f() -> dict:
            return dict(get_run_logger(foo="test", flow_name="bar").extra)

        extra = f()
        assert extra["foo"] == "test" and extra["flow_name"] == "bar"

    def test_levels_and_handlers_are_the_standard_ones(self, caplog):
        """The level is set per logger as usual: DEBUG records reach caplog once the
        ``flowyard.flow_runs`` logger is lowered (as with ``prefect.flow_runs``)."""

        @flow
        def f() -> None:
            get_run_logger().debug("fine detail")

        f()
        assert "fine detail" not in caplog.text
        with caplog.at_level(logging.DEBUG, logger="flowyard.flow_runs"):
            f()
        assert [r.name for r in caplog.records if r.getMessage() == "fine detail"] == [
            "flowyard.flow_runs"
        ]

    def test_a_console_handler_on_the_root_prints_each_record_once(self, capsys):
        """With ``logging.basicConfig()`` the root prints the record; the run logger does
        not echo it a second time."""
        root = logging.getLogger()
        console = logging.StreamHandler()  # sys.stderr, as basicConfig's
        root.addHandler(console)
        try:

            @flow
            def f() -> None:
                get_run_logger().warning("only once")

            f()
        finally:
            root.removeHandler(console)
        assert capsys.readouterr().err.count("only once") == 1
