"""Markdown artifacts as HTML that is safe to put in a page.

Artifacts' markdown is stored exactly as a flow wrote it, by anyone who can run a flow:
it is never trusted as HTML. ``markdown-it-py`` renders it with raw HTML off (a
``<script>`` or ``<img onerror=…>`` in the text is shown as text, escaped), every
attribute escaped, and two rules of our own:

- a link goes only to ``http(s)``, ``mailto`` or a path of this server (no
  ``javascript:``, ``data:``, ``vbscript:`` or any other scheme: such a link stays text),
  and carries ``rel="nofollow noopener noreferrer"``;
- an image is shown only from an ``http(s)`` URL, with ``referrerpolicy="no-referrer"``
  (the page's address never reaches the image's host); any other image is its alt text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape

LINK_SCHEMES = ("http", "https", "mailto")
IMAGE_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*):")
MAX_MARKDOWN_CHARS = 200_000  # a longer text is shown cut (the API has it whole)


def _scheme(url: str) -> str | None:
    """The URL's scheme, lowercased (None for a relative URL). Control characters and
    spaces are dropped first, as browsers do (``java\\tscript:`` is ``javascript:``)."""
    cleaned = "".join(ch for ch in url if ch > " " and ch != "\x7f")
    found = _SCHEME.match(cleaned)
    return found[1].lower() if found else None


def allowed_link(url: str) -> bool:
    scheme = _scheme(url)
    if scheme is None:  # a path, a fragment, or "//host/…" (http(s) as the page's own)
        return True
    return scheme in LINK_SCHEMES


def allowed_image(url: str) -> bool:
    return _scheme(url) in IMAGE_SCHEMES and url.strip().lower().startswith(("http://", "https://"))


def _render_link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return str(self.renderToken(tokens, idx, options, env))


def _render_image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    if not allowed_image(str(token.attrGet("src") or "")):
        return str(escape(alt))
    token.attrSet("alt", alt)
    token.attrSet("referrerpolicy", "no-referrer")
    token.attrSet("loading", "lazy")
    return str(self.renderToken(tokens, idx, options, env))


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = allowed_link  # type: ignore[method-assign]
    md.add_render_rule("link_open", _render_link_open)
    md.add_render_rule("image", _render_image)
    return md


_md = _parser()


def render(text: str) -> Markup:
    """``text`` (markdown) as safe HTML."""
    if len(text) > MAX_MARKDOWN_CHARS:
        hidden = len(text) - MAX_MARKDOWN_CHARS
        text = text[:MAX_MARKDOWN_CHARS] + f"\n\n… ({hidden} more characters)"
    return Markup(_md.render(text))  # noqa: S704 - raw HTML is off; links and images checked
