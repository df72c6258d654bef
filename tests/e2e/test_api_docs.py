"""``/docs`` and ``/redoc`` work on a machine without internet: every asset is the server's."""

from __future__ import annotations

import re

import httpx
import pytest

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_from_the_server(server, page):
    """The page names no other host, and every script, style and icon it names loads."""
    with httpx.Client(base_url=server.url) as http:
        html = http.get(page)
        assert html.status_code == 200
        assert "http://" not in html.text and "https://" not in html.text, html.text
        assets = ASSET.findall(html.text)
        assert any(url.endswith(".js") for url in assets), assets
        for url in assets:
            assert url.startswith("/") and not url.startswith("//"), url
            response = http.get(url)
            assert response.status_code == 200, url
            assert len(response.content) > 1000, url
        assert http.get("/openapi.json").json()["info"]["title"] == "Flowyard"
