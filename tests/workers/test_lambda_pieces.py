"""The Lambda worker's pure pieces: payload, invoke answer, template, handler input, zip."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowyard.blocks import AwsCredentials, render_job_configuration
from flowyard.cli.main import cli
from flowyard.workers.aws_lambda import LambdaVariables, LambdaWorker, invocation
from flowyard.workers.aws_lambda.handler import _environment, _required, handler
from flowyard.workers.aws_lambda.package import SERVER_ONLY, pip_command, prune, write_zip


class TestPayload:
    def test_the_payload_carries_the_run_where_to_report_and_the_run_token(self):
        """The run id, API URL (no trailing slash), run token, claim token and env travel."""
        payload = invocation.build_payload(
            run_id="r1",
            api_url="http://api:4200/",
            run_token="fyrt_x.y",
            claim_token="c1",
            env={"A": "1"},
        )
        assert payload == {
            "flowyard": 1,
            "flow_run_id": "r1",
            "api_url": "http://api:4200",
            "token": "fyrt_x.y",
            "claim_token": "c1",
            "env": {"A": "1"},
        }

    def test_invoke_arguments_name_the_function_type_and_qualifier(self):
        """The qualifier is sent only when set; the payload is JSON bytes."""
        args = invocation.invoke_arguments("fn", None, "Event", {"a": 1})
        assert args == {"FunctionName": "fn", "InvocationType": "Event", "Payload": b'{"a": 1}'}
        with_alias = invocation.invoke_arguments("fn", "live", "RequestResponse", {})
        assert with_alias["Qualifier"] == "live"


class TestAnswers:
    def test_a_function_error_gives_lambdas_reason(self):
        """FunctionError with Lambda's error document: type and first line of the message."""
        response = {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "ResponseMetadata": {"RequestId": "req-1"},
        }
        body = json.dumps(
            {"errorType": "Runtime.ExitError", "errorMessage": "Task timed out\nafter 900 s"}
        )
        outcome = invocation.parse_response(response, body.encode())
        assert outcome.request_id == "req-1"
        assert outcome.error_message == "Runtime.ExitError: Task timed out"

    def test_an_event_answer_has_a_request_id_and_no_result(self):
        """A 202 from an Event invoke: the request id from the headers when not in metadata."""
        response = {
            "StatusCode": 202,
            "ResponseMetadata": {"HTTPHeaders": {"x-amzn-requestid": "req-2"}},
        }
        outcome = invocation.parse_response(response, b"")
        assert (outcome.request_id, outcome.status, outcome.function_error) == ("req-2", 202, None)

    @pytest.mark.parametrize(
        ("code", "throttle"),
        [
            ("TooManyRequestsException", True),
            ("EC2ThrottledException", True),
            ("ResourceNotFoundException", False),
            ("AccessDeniedException", False),
        ],
    )
    def test_only_throttles_are_retried(self, code, throttle):
        """Capacity refusals are retried; a missing function or a denial is not."""
        assert invocation.is_throttle({"Error": {"Code": code}}) is throttle

    def test_a_function_with_too_little_memory_is_refused(self):
        """The memory hint refuses a smaller function, and says so."""
        assert invocation.memory_refusal(512, 1024, "fn") == (
            "function 'fn' has 512 MB of memory; the job asks for 1024 MB"
        )
        assert invocation.memory_refusal(2048, 1024, "fn") is None
        assert invocation.memory_refusal(512, None, "fn") is None


class TestTemplate:
    def test_the_default_template_renders_with_a_deployments_variables(self):
        """The pool's default template plus job variables gives a typed configuration."""
        template = LambdaWorker.default_base_job_template()
        rendered = render_job_configuration(
            template,
            {"function_name": "arn:aws:lambda:eu-west-1:1:function:f", "qualifier": "live"},
            {"invocation_type": "RequestResponse", "env": {"A": "1"}},
        )
        config = LambdaVariables.model_validate(
            {k: v for k, v in rendered.items() if v is not None}
        )
        assert config.function_name == "arn:aws:lambda:eu-west-1:1:function:f"
        assert (config.qualifier, config.invocation_type) == ("live", "RequestResponse")
        assert (config.env, config.timeout_seconds, config.memory_mb) == ({"A": "1"}, 900, None)

    def test_timeouts_beyond_lambdas_limit_are_invalid(self):
        """Lambda stops at 15 minutes, so a longer timeout hint is rejected."""
        with pytest.raises(ValueError, match="less than or equal to 900"):
            LambdaVariables(timeout_seconds=1200)

    def test_credentials_give_boto3_only_what_is_set(self):
        """Empty fields are left out, so boto3's default chain fills them."""
        block = AwsCredentials(region_name="eu-west-1", aws_secret_access_key="s3cr3t")
        assert block.client_options() == {
            "region_name": "eu-west-1",
            "aws_secret_access_key": "s3cr3t",
        }
        assert AwsCredentials().client_options() == {}


class TestHandlerInput:
    def test_an_event_not_sent_by_a_worker_is_refused_by_name(self):
        """The handler names what the event lacks instead of failing somewhere deeper."""
        with pytest.raises(ValueError, match="lacks api_url, token, claim_token"):
            handler({"flow_run_id": "r1"}, None)
        with pytest.raises(ValueError, match="JSON object"):
            _required([])  # type: ignore[arg-type]

    def test_the_environment_is_set_for_one_invocation_only(self, monkeypatch):
        """A warm function reused by the next invocation does not keep the last one's env."""
        monkeypatch.setenv("KEPT", "before")
        monkeypatch.delenv("ADDED", raising=False)
        with _environment({"KEPT": "during", "ADDED": "during"}):
            assert (os.environ["KEPT"], os.environ["ADDED"]) == ("during", "during")
        assert os.environ["KEPT"] == "before"
        assert "ADDED" not in os.environ


class TestPackage:
    def test_the_zip_is_reproducible_with_the_code_at_its_root(self, tmp_path: Path):
        """Same folder, same bytes; caches are left out; the flows sit at /var/task."""
        code = tmp_path / "code"
        (code / "pkg" / "__pycache__").mkdir(parents=True)
        (code / "flows.py").write_text("x = 1\n")
        (code / "pkg" / "__init__.py").write_text("")
        (code / "pkg" / "__pycache__" / "m.pyc").write_bytes(b"\0")
        first, second = tmp_path / "a.zip", tmp_path / "b.zip"
        runner = CliRunner()
        for output in (first, second):
            result = runner.invoke(
                cli, ["lambda", "package", str(code), "-o", str(output), "--code-only"]
            )
            assert result.exit_code == 0, result.output
            assert "flowyard.workers.aws_lambda.handler.handler" in result.output
        assert first.read_bytes() == second.read_bytes()
        with zipfile.ZipFile(first) as archive:
            assert archive.namelist() == ["flows.py", "pkg/__init__.py"]

    def test_dependencies_are_installed_for_lambdas_platform(self, tmp_path: Path):
        """pip is asked for manylinux wheels of the runtime's Python, whatever the host."""
        command = pip_command(tmp_path, ["flowyard==1.0"], "3.12", "manylinux2014_aarch64")
        assert command[-1] == "flowyard==1.0"
        assert ["--platform", "manylinux2014_aarch64"] == command[7:9]
        assert "--only-binary=:all:" in command
        assert command[command.index("--python-version") + 1] == "3.12"

    def test_write_zip_marks_executables(self, tmp_path: Path):
        """An executable file keeps its mode in the zip (0755), others get 0644."""
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "run.sh").write_text("#!/bin/sh\n")
        (tmp_path / "src" / "run.sh").chmod(0o755)
        (tmp_path / "src" / "data.txt").write_text("d")
        write_zip(tmp_path / "src", tmp_path / "out.zip")
        with zipfile.ZipFile(tmp_path / "out.zip") as archive:
            modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        assert modes == {"data.txt": 0o644, "run.sh": 0o755}

    def test_server_only_dependencies_are_left_out(self, tmp_path: Path):
        """The server's and other workers' packages go (with their dist-info); the engine's stay."""
        for name in (
            "kubernetes",
            "SQLAlchemy-2.0.1.dist-info",
            "pydantic",
            "httpx-0.28.dist-info",
        ):
            (tmp_path / name).mkdir()
        (tmp_path / "six.py").write_text("")
        (tmp_path / "redis.py").write_text("")
        prune(tmp_path, SERVER_ONLY)
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "httpx-0.28.dist-info",
            "pydantic",
            "six.py",
        ]
