"""Messages between flow runs (``send_input`` / ``receive_input``), on a real server and a
real worker. Prefect 3.9.1's expectations, from ``tests/input/test_run_input.py``
(test_automatic_input_receive_multiple_values, ..._with_exclude_keys, ..._can_receive_
metadata, test_respond, test_respond_raises_exception_no_sender_in_input,
test_receive_can_raise_timeout_errors_as_generator) and the module's own example."""

from __future__ import annotations

import asyncio
import textwrap

import httpx
import pytest

from flowyard import flow
from flowyard import schemas as s
from flowyard.input import RunInput, receive_input, send_input
from flowyard.runtime import flow_run
from flowyard.schemas.pauses import MAX_INPUTS_PER_RUN
from flowyard.states import StateType
from tests.e2e.conftest import deploy_flow
from tests.waiting import wait_until

CITIES = [("New York", "NY"), ("Boston", "MA"), ("Chicago", "IL")]


class Place(RunInput):
    city: str
    state: str


class Answer(RunInput):
    text: str


@pytest.fixture
def script_api(server, monkeypatch):
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    return server.url


def _inbox(api) -> str:
    """A Running flow run to send messages to (recorded as a script's would be)."""
    return api.create_flow_run(s.FlowRunCreate(flow_name="inbox")).id


def _receive_all(run_id: str, kind=tuple[str, str], **options) -> list:
    return list(receive_input(kind, flow_run_id=run_id, timeout=1, poll_interval=0.1, **options))


def test_values_are_received_in_order_each_once(script_api, api):
    """Three tuples sent, three received, oldest first, as tuples; received once: a later
    receive that excludes the keys read gets only what came after."""
    run_id = _inbox(api)
    for city in CITIES:
        send_input(city, flow_run_id=run_id)
    assert _receive_all(run_id) == CITIES

    with_keys = _receive_all(run_id, with_metadata=True)
    assert [m.value for m in with_keys] == CITIES
    assert all(m.metadata.key.startswith("tupleautomaticruninput-auto-") for m in with_keys)
    assert {m.metadata.sender for m in with_keys} == {None}  # sent from outside a flow run
    assert {m.metadata.receiver for m in with_keys} == {run_id}

    send_input(("Los Angeles", "CA"), flow_run_id=run_id)
    read = {m.metadata.key for m in with_keys}
    assert _receive_all(run_id, exclude_keys=read) == [("Los Angeles", "CA")]
    assert _receive_all(run_id, kind=int) == []  # another type's prefix: nothing


def test_a_model_sent_from_a_flow_is_answered_with_respond(script_api, api):
    """As Prefect's test_respond: a message sent from a flow run names its sender;
    ``respond`` sends the answer to that run, where it is received as its model."""
    receiver = _inbox(api)

    @flow
    def asker(to: str) -> str:
        Place(city="New York", state="NY").send_to(to)
        return flow_run.id

    asker_id = asker(receiver)
    place = Place.receive(flow_run_id=receiver, timeout=1, poll_interval=0.1).next()
    assert isinstance(place, Place) and (place.city, place.state) == ("New York", "NY")
    assert place.metadata is not None
    assert place.metadata.sender == f"flowyard.flow-run.{asker_id}"
    place.respond(Answer(text="it is in NY"))
    answer = Answer.receive(flow_run_id=asker_id, timeout=1, poll_interval=0.1).next()
    assert answer.text == "it is in NY"

    send_input(Place(city="Boston", state="MA"), flow_run_id=receiver)  # from no flow run
    unread = Place.receive(
        flow_run_id=receiver, timeout=1, poll_interval=0.1, exclude_keys={place.metadata.key}
    )
    anonymous = unread.next()
    assert anonymous.city == "Boston"
    with pytest.raises(
        RuntimeError, match="Cannot respond to an input that was not sent by a flow run."
    ):
        anonymous.respond(Answer(text="to nobody"))


def test_receiving_stops_or_raises_after_its_timeout(script_api, api):
    run_id = _inbox(api)
    assert list(Place.receive(flow_run_id=run_id, timeout=0, poll_interval=0.1)) == []
    with pytest.raises(TimeoutError, match="Timed out waiting for input"):
        for _ in Place.receive(flow_run_id=run_id, timeout=0, raise_timeout_error=True):
            pass
    with pytest.raises(RuntimeError, match="flow_run_id must be given outside a flow run"):
        receive_input(int)


def test_messages_are_bounded_and_refused_with_a_reason(server, api):
    """At most 64 KiB a message and MAX_INPUTS_PER_RUN a run; a key used already gets a
    409 with Prefect's reason; a page of messages is at most 100."""
    run_id = _inbox(api)
    url = f"{server.url}/api/flow_runs/{run_id}/messages"
    with httpx.Client(timeout=30) as http:
        big = http.post(url, json={"key": "big", "value": {"text": "x" * 70_000}})
        assert big.status_code == 422 and "at most 65536 are taken" in big.text
        assert http.post(url, json={"key": "k-0", "value": {"n": 0}}).status_code == 201
        again = http.post(url, json={"key": "k-0", "value": {"n": 1}})
        assert again.status_code == 409
        assert "A flow run input with this key already exists." in again.text
        for n in range(1, MAX_INPUTS_PER_RUN):
            assert http.post(url, json={"key": f"k-{n}", "value": {"n": n}}).status_code == 201
        full = http.post(url, json={"key": "one-more", "value": {"n": -1}})
        assert full.status_code == 409 and f"at most {MAX_INPUTS_PER_RUN} are kept" in full.text
        page = {"prefix": "k-", "limit": 100}
        assert len(http.post(f"{url}/filter", json=page).json()) == 100
        assert http.post(f"{url}/filter", json={**page, "limit": 101}).status_code == 422


RECEIVER = textwrap.dedent(
    """
    from pathlib import Path

    from flowyard import flow
    from flowyard.input import receive_input
    from flowyard.runtime import flow_run


    @flow
    def receiver(folder: str) -> int:
        got = []
        for number in receive_input(int, timeout=120, poll_interval=0.2):
            got.append(number)
            if len(got) == 3:
                break
        Path(folder, flow_run.id).write_text(",".join(map(str, got)))
        return sum(got)
    """
)


def test_a_deployed_run_receives_what_it_is_sent(script_api, api, pool, start_worker, tmp_path):
    """A worker-launched run reads its own messages with its run token, in order."""
    (tmp_path / "flows.py").write_text(RECEIVER)
    deployment = deploy_flow(api, pool, tmp_path, "receiver")
    start_worker()
    params = s.DeploymentRunRequest(parameters={"folder": str(tmp_path)})
    run_id = api.run_deployment(deployment.id, params).id
    wait_until(lambda: api.read_flow_run(run_id).state.type is StateType.RUNNING, timeout=90)
    for number in (4, 5, 6):
        send_input(number, flow_run_id=run_id)
    wait_until(lambda: api.read_flow_run(run_id).state.type.is_terminal, timeout=90)
    assert api.read_flow_run(run_id).state.type is StateType.COMPLETED
    assert (tmp_path / run_id).read_text() == "4,5,6"


def test_an_async_flow_awaits_its_sends_and_iterates_with_async_for(script_api, api):
    """As Prefect's async calls: ``await send_input(...)``, ``async for`` over a receiver."""

    @flow
    async def talks_to_itself() -> list[tuple[str, str]]:
        for city in CITIES:
            await send_input(city, flow_run_id=flow_run.id)
        received = []
        async for city in receive_input(tuple[str, str], timeout=1, poll_interval=0.1):
            received.append(city)
        return received

    assert asyncio.run(talks_to_itself()) == CITIES
