"""The web UI's pure parts: stream positions, filters from a query string, cursors, where
sign-in may send a browser back to, and the size bound on a live message."""

from __future__ import annotations

import pytest

from flowyard.errors import InvalidInput
from flowyard.orchestrator import run_pages
from flowyard.states import StateType
from flowyard.ui import feeds
from flowyard.ui.pages import _safe_next


def test_a_position_reads_back_what_it_wrote():
    """An event position, or an event and a log position, survive the message id."""
    assert feeds.Position.parse(str(feeds.Position(42))) == feeds.Position(42, 0)
    assert feeds.Position.parse(str(feeds.Position(42, 7))) == feeds.Position(42, 7)
    assert str(feeds.Position(42, 7)) == "42-7"


@pytest.mark.parametrize("text", ["", "abc", "1-x", "-1", "1--2", "9" * 5 + "-" + "z"])
def test_a_malformed_position_is_refused(text):
    """A Last-Event-ID that is not a position is a clear 422, not a stream from zero."""
    with pytest.raises(InvalidInput, match="Last-Event-ID"):
        feeds.Position.parse(text)


def test_states_come_repeated_or_comma_separated_and_unknown_ones_are_named():
    """``state`` reads as the API reads it; a wrong state names itself and the valid ones."""
    where = run_pages.RunFilter.from_query({"pool": " p "}, ["running,failed", "RUNNING"])
    assert where.state == (StateType.RUNNING, StateType.FAILED) and where.pool == "p"
    assert where.query_string(cursor="") == "state=RUNNING%2CFAILED&pool=p"
    with pytest.raises(InvalidInput, match="'sleepy'.*COMPLETED"):
        run_pages.RunFilter.from_query({}, ["sleepy"])
    with pytest.raises(InvalidInput, match="name: at most"):
        run_pages.RunFilter.from_query({"name": "x" * 201}, [])


def test_a_cursor_not_made_here_is_refused():
    with pytest.raises(InvalidInput, match="cursor"):
        run_pages.decode_cursor("bm90IGEgY3Vyc29y")


@pytest.mark.parametrize(
    ("target", "goes_to"),
    [
        ("/ui/runs/abc?level=WARNING", "/ui/runs/abc?level=WARNING"),
        ("//evil.example/ui/", "/ui/runs"),
        ("https://evil.example/", "/ui/runs"),
        ("/ui//evil.example", "/ui/runs"),
        ("/ui/\\evil.example", "/ui/runs"),
        ("/ui/sign-in", "/ui/runs"),
        ("/api/flow_runs", "/ui/runs"),
    ],
)
def test_sign_in_sends_back_to_this_ui_only(target, goes_to):
    """After sign-in the browser returns to the page it asked for, never to another site."""
    assert _safe_next(target) == goes_to


def test_a_message_too_big_asks_the_page_to_reload():
    """No live message is larger than the bound: a bigger one becomes a reload request."""
    big = feeds.message("swap", feeds.Position(1), {"x": "y" * feeds.MAX_MESSAGE_BYTES})
    assert big == "id: 1\nevent: reload\ndata: {}\n\n"
    small = feeds.message("row", feeds.Position(2), {"id": "r", "html": "<tr></tr>"})
    assert small.startswith("id: 2\nevent: row\ndata: {")
