"""A page as headless Chromium (the system's, /usr/bin/chromium) renders it: first paint,
load, and how long script and layout kept the page from answering input."""

from __future__ import annotations

from pathlib import Path

from common import summary

CHROMIUM = Path("/usr/bin/chromium")

WATCH_LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
}).observe({ type: "longtask", buffered: true });
"""

MEASURE = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const tasks = window.__longTasks || [];
  return {
    first_paint: paint ? paint.startTime : null,
    load: nav.loadEventEnd,
    longest_task: tasks.length ? Math.max(...tasks) : 0,
    blocking: tasks.reduce((sum, d) => sum + Math.max(0, d - 50), 0),
    nodes: document.getElementsByTagName("*").length,
  };
}"""


def page_timings(url: str, repeat: int) -> dict[str, object] | str:
    """``url`` opened ``repeat`` times, each in a fresh context: the summaries (ms) of
    first-contentful-paint, the load event, the longest task and the total blocking time
    (each long task's time past 50 ms), and the page's element count."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "playwright not installed"
    if not CHROMIUM.exists():
        return f"no {CHROMIUM}"
    found: dict[str, list[float]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        for _ in range(repeat):
            context = browser.new_context()
            page = context.new_page()
            page.add_init_script(WATCH_LONG_TASKS)
            page.goto(url, wait_until="load", timeout=120_000)
            page.wait_for_function("performance.getEntriesByType('navigation')[0].loadEventEnd > 0")
            for name, value in page.evaluate(MEASURE).items():
                if value is not None:
                    found.setdefault(name, []).append(float(value))
            context.close()
        browser.close()
    out: dict[str, object] = {k: summary(v) for k, v in found.items() if k != "nodes"}
    out["nodes"] = int(max(found.get("nodes", [0])))
    return out
