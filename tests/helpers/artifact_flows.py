"""Flows and tasks that publish artifacts, for the artifact tests (deployed or called)."""

FLOWS = """
from flowyard import flow, task
from flowyard.artifacts import (
    create_image_artifact, create_link_artifact, create_markdown_artifact,
    create_progress_artifact, create_table_artifact, update_progress_artifact,
)


@task
def tabulate(rows: int, key: str) -> str:
    table = [{"n": i, "half": i / 2 if i != 1 else float("nan")} for i in range(rows)]
    return str(create_table_artifact(table, key=f"{key}-table", description="the rows"))


@flow(name="reporting")
def reporting(rows: int, key: str) -> None:
    progress = create_progress_artifact(0, key=f"{key}-progress")
    tabulate(rows, key)
    update_progress_artifact(progress, 100, description="all done")
    create_markdown_artifact(f"# Report\\n\\n{rows} rows", key=key, description="daily")
    create_link_artifact("https://example.com/data", link_text="the data")
    create_image_artifact("https://example.com/chart.png", key=f"{key}-chart")


if __name__ == "__main__":
    import sys

    reporting(int(sys.argv[1]), sys.argv[2])
"""
