"""Rendering artifacts without a server: hostile markdown comes out harmless, tables in
each of their shapes come out as escaped cells."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from flowyard.ui.artifact_pages import MAX_TABLE_ROWS, table_view
from flowyard.ui.markdown import allowed_image, allowed_link, render

HOSTILE = [
    '<script>alert("x")</script>',
    "<img src=x onerror=alert(1)>",
    '<iframe src="https://evil.example/"></iframe>',
    '<a href="javascript:alert(1)">raw</a>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](\x01javascript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;avascript&colon;alert(1))",
    "[x](<javascript:alert(1)>)",
    "<javascript:alert(1)>",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html,<script>alert(1)</script>)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    '![x](http://a/b.png" onerror="alert(1))',
    '[x](https://a.b "t\\" onmouseover=alert(1)")',
]


class Elements(HTMLParser):
    """The elements of some HTML, as a browser would parse them: tag and attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {name: value or "" for name, value in attrs}))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_renders_to_harmless_html(text):
    """No script, frame or raw element, no event handler and no script link survive."""
    for tag, attrs in Elements(str(render(text))).found:
        assert tag in {"p", "a", "img", "code", "pre"}, (tag, attrs)
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        for name in ("href", "src"):
            url = attrs.get(name, "").strip().lower()
            assert not url.startswith(("javascript:", "data:", "vbscript:")), (tag, attrs)


def test_safe_markdown_keeps_its_links_images_and_tables():
    """Ordinary markdown renders: links with rel, https images without a referrer, tables."""
    html = str(
        render("[docs](https://x.example/d) ![c](https://x.example/c.png)\n\n|a|b|\n|-|-|\n|1|2|")
    )
    assert '<a href="https://x.example/d" rel="nofollow noopener noreferrer">docs</a>' in html
    assert 'src="https://x.example/c.png"' in html and 'referrerpolicy="no-referrer"' in html
    assert "<table>" in html and "<td>2</td>" in html
    assert allowed_link("/ui/runs") and allowed_link("mailto:a@b.c")
    assert not allowed_image("//x.example/c.png") and not allowed_image("/ui/static/x.png")


def test_tables_of_every_shape_become_header_and_text_cells():
    """Rows as objects (their keys the header, missing cells empty), rows as lists, and an
    object of columns; values other than text are JSON; long tables are cut."""
    rows = table_view([{"a": 1, "b": "<b>"}, {"a": None, "c": [1]}])
    assert rows.columns == ["a", "b", "c"]
    assert rows.rows == [["1", "<b>", ""], ["", "", "[\n  1\n]"]]
    lists = table_view([[1, 2], [3]])
    assert lists.columns == [] and lists.rows == [["1", "2"], ["3", ""]]
    columns = table_view({"x": [1, 2], "y": ["a"]})
    assert columns.columns == ["x", "y"] and columns.rows == [["1", "a"], ["2", ""]]
    long = table_view([{"n": n} for n in range(MAX_TABLE_ROWS + 3)])
    assert len(long.rows) == MAX_TABLE_ROWS and long.hidden_rows == 3
