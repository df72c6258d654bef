"""Prefect's filter objects for ``read_flow_runs``, turned into ``GET /api/flow_runs``'s
query parameters (a pure function: no I/O).

    flow_run_filter.id.any_               -> id (repeated, at most 200)
    flow_run_filter.name.like_            -> name (a case-insensitive substring, as like_)
    flow_run_filter.state.type.any_ / not_any_ -> state (the state types left)
    flow_run_filter.tags.all_ / any_      -> tag / any_tag
    flow_run_filter.deployment_id.any_    -> deployment_id (one)
    flow_filter.name.any_                 -> flow (one)
    deployment_filter.id.any_ / name.any_ -> deployment_id / deployment (one)
    work_pool_filter.name.any_            -> pool (one)
    sort START_TIME_ASC / START_TIME_DESC / END_TIME_DESC -> order
    offset                                -> the first ``offset`` runs of a longer page dropped

Anything else (another field, ``or_``, several names where the API takes one, another
sort) raises ``InvalidInput`` naming it: a filter is never silently dropped. Prefect's
own filter objects work as well as ``flowyard.client.schemas.filters``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowyard.errors import InvalidInput
from flowyard.states import StateType

MAX_IDS = 200
MAX_PAGE = 10_000  # the API's largest page: limit + offset
SORTS = {
    "START_TIME_ASC": "started-earliest",
    "START_TIME_DESC": "started",
    "END_TIME_DESC": "ended",
}


@dataclass
class FlowRunQuery:
    """``list_flow_runs`` keywords, and the runs to drop from the page's start."""

    params: dict[str, Any] = field(default_factory=dict)
    offset: int = 0
    matches_nothing: bool = False


def flow_run_query(
    *,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    deployment_filter: Any = None,
    work_pool_filter: Any = None,
    sort: Any = None,
    limit: int,
    offset: int = 0,
) -> FlowRunQuery:
    """The query for these filters; ``InvalidInput`` for what the API cannot express."""
    query = FlowRunQuery(offset=offset)
    runs = _Fields(flow_run_filter, "flow_run_filter")
    _take_run_fields(runs, query)
    flows = _Fields(flow_filter, "flow_filter")
    _set(query, "flow", flows.one("name", "any_"))
    deployments = _Fields(deployment_filter, "deployment_filter")
    _set(query, "deployment_id", deployments.one("id", "any_"))
    _set(query, "deployment", deployments.one("name", "any_"))
    pools = _Fields(work_pool_filter, "work_pool_filter")
    _set(query, "pool", pools.one("name", "any_"))
    for fields in (runs, flows, deployments, pools):
        fields.refuse_the_rest()
    query.params["order"] = _order(sort)
    if not 0 <= offset or not 1 <= limit or limit + offset > MAX_PAGE:
        raise InvalidInput(
            f"limit (at least 1) plus offset (at least 0) must be at most {MAX_PAGE}"
        )
    query.params["limit"] = limit + offset
    return query


def _take_run_fields(runs: _Fields, query: FlowRunQuery) -> None:
    ids = runs.take("id", "any_")
    if ids is not None:
        if len(ids) > MAX_IDS:
            raise InvalidInput(f"flow_run_filter.id.any_: at most {MAX_IDS} ids")
        query.matches_nothing |= not ids
        query.params["id"] = [str(one) for one in ids]
    _set(query, "name", runs.take("name", "like_"))
    states = _states(runs.take("state", "type", "any_"), runs.take("state", "type", "not_any_"))
    if states is not None:
        query.matches_nothing |= not states
        query.params["state"] = ",".join(states)
    for key, param in (("all_", "tags"), ("any_", "any_tags")):
        tags = runs.take("tags", key)
        if tags is not None:
            query.matches_nothing |= key == "any_" and not tags
            query.params[param] = list(tags)
    _set(query, "deployment_id", runs.one("deployment_id", "any_"))


def _set(query: FlowRunQuery, param: str, value: Any) -> None:
    """One value per parameter: two filters asking for different ones match nothing."""
    if value is None:
        return
    value = str(value)
    if param in query.params and query.params[param] != value:
        query.matches_nothing = True
    query.params[param] = value


def _states(any_: list[Any] | None, not_any: list[Any] | None) -> list[str] | None:
    if any_ is None and not_any is None:
        return None
    kept = [_state_type(one) for one in any_] if any_ is not None else list(StateType)
    dropped = {_state_type(one) for one in not_any or ()}
    return [state.value for state in kept if state not in dropped]


def _state_type(value: Any) -> StateType:
    try:
        return StateType(str(getattr(value, "value", value)).upper())
    except ValueError:
        raise InvalidInput(f"flow_run_filter.state.type: unknown state type {value!r}") from None


def _order(sort: Any) -> str:
    if sort is None:
        return "newest"
    name = str(getattr(sort, "value", sort))
    if name not in SORTS:
        raise InvalidInput(
            f"sort {name!r}: Flowyard's API sorts flow runs by {', '.join(SORTS)} "
            "(or, with no sort, newest first)"
        )
    return SORTS[name]


class _Fields:
    """A filter object's fields as nested dicts, taken one by one; what is left is refused."""

    def __init__(self, model: Any, where: str) -> None:
        self.where = where
        self.left: dict[str, Any] = {} if model is None else _dump(model, where)

    def take(self, *path: str) -> Any:
        node = self.left
        for key in path[:-1]:
            node = node.get(key, {})
        value = node.pop(path[-1], None) if isinstance(node, dict) else None
        self._prune(self.left, path[:-1])
        return value

    def one(self, *path: str) -> Any:
        values = self.take(*path)
        if values is None:
            return None
        if len(values) != 1:
            raise InvalidInput(
                f"{self.where}.{'.'.join(path)}: Flowyard's API filters flow runs by one "
                f"value here, not {len(values)}"
            )
        return values[0]

    def refuse_the_rest(self) -> None:
        for path in _leaves(self.left, [self.where]):
            raise InvalidInput(
                f"Flowyard's API cannot filter flow runs by {path}; filters it takes: "
                "see flowyard.client.run_filters"
            )

    def _prune(self, node: dict[str, Any], path: tuple[str, ...]) -> None:
        if path and isinstance(node.get(path[0]), dict):
            self._prune(node[path[0]], path[1:])
            if not node[path[0]]:
                del node[path[0]]


def _dump(model: Any, where: str) -> dict[str, Any]:
    """The fields set (None left out), without ``operator: and_``; ``or_`` is refused."""
    dumped = model.model_dump(exclude_none=True) if hasattr(model, "model_dump") else model
    if not isinstance(dumped, dict):
        raise InvalidInput(f"{where}: a filter object, not {type(model).__name__}")
    return _without_and(dumped, where)


def _without_and(node: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "operator":
            if str(getattr(value, "value", value)) not in ("and_", "Operator.and_"):
                raise InvalidInput(f"{where}.operator: Flowyard's API combines filters with and_")
            continue
        out[key] = _without_and(value, f"{where}.{key}") if isinstance(value, dict) else value
    return {k: v for k, v in out.items() if v != {}}


def _leaves(node: dict[str, Any], path: list[str]) -> list[str]:
    found: list[str] = []
    for key, value in node.items():
        if isinstance(value, dict):
            found += _leaves(value, [*path, key])
        else:
            found.append(".".join([*path, key]))
    return found
