"""Sort orders of ``read_flow_runs``, as ``prefect.client.schemas.sorting``."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FlowRunSort"]


class FlowRunSort(StrEnum):
    """Prefect's names; ``read_flow_runs`` takes those Flowyard's API can sort by
    (``flowyard.client.run_filters.SORTS``) and refuses the others."""

    ID_DESC = "ID_DESC"
    START_TIME_ASC = "START_TIME_ASC"
    START_TIME_DESC = "START_TIME_DESC"
    EXPECTED_START_TIME_ASC = "EXPECTED_START_TIME_ASC"
    EXPECTED_START_TIME_DESC = "EXPECTED_START_TIME_DESC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    NEXT_SCHEDULED_START_TIME_ASC = "NEXT_SCHEDULED_START_TIME_ASC"
    END_TIME_DESC = "END_TIME_DESC"
