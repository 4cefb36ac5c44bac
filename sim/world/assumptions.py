"""Named assumptions of a scenario: the numbers no source gives, with the range a reader should doubt.

A scenario lists them under ``assumptions:``; each entry names one number of the scenario by a path,
the range it could plausibly take and why. :mod:`experiments.assumption_sensitivity` sweeps each one
over its range (one at a time) and reports how far the outcomes move, so a result that rests on an
assumption says so.

A path is dotted; a list is addressed by the fields that identify its element, in brackets::

    goods[id=ree_light].demand_elasticity
    producers[name=Rest-of-world light REO].capacity
    user_sectors[country=JPN,sector=magnets].inventory_months
    measures[label=Export quota 2010 H2 (July 2010 cut)].quantity

(an element must match exactly one entry; a plain index such as ``goods.0`` is refused, because it
silently moves to another entry when the list is reordered). A comma inside a selector starts a new
``key=value`` only when ``key=`` follows it, so labels that hold commas can be named whole:
``measures[label=Baotou partial halt, Oct 2012 - Jan 2013].intensity``.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

__all__ = ["assumption_value", "check_assumptions", "parse_path", "with_assumption"]

_SEGMENT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<select>[^\]]+)\])?$")
# A selector's keys are separated by a comma followed by the next key and "="; other commas are in a value.
_NEXT_KEY = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")


def parse_path(path: str) -> list[tuple[str, dict[str, str] | None]]:
    """Split an assumption path into ``(field, selector)`` segments; ``selector`` maps the fields that
    pick one element of a list to their values (``None`` for a plain field).

    Raises:
        ValueError: a malformed path or selector.
    """
    # Dots inside brackets belong to the selector's values (labels may contain them).
    parts, depth, cur = [], 0, ""
    for ch in str(path):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "." and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for part in parts:
        m = _SEGMENT.match(part.strip())
        if m is None or depth != 0:
            raise ValueError(f"{part!r} is not a field name or field[key=value,...]")
        select = None
        if m.group("select") is not None:
            select = {}
            for item in _NEXT_KEY.split(m.group("select")):
                key, eq, value = item.partition("=")
                if not eq or not key.strip():
                    raise ValueError(f"{part!r}: a selector is key=value[,key=value]")
                select[key.strip()] = value.strip()
        out.append((m.group("name"), select))
    return out


@functools.lru_cache(maxsize=4096)
def _segments(path: str) -> tuple[tuple[str, tuple[tuple[str, str], ...] | None], ...]:
    """:func:`parse_path` as immutable tuples, parsed once per path (every run checks every
    assumption's path; a calibration runs the same case thousands of times).
    """
    return tuple((name, None if select is None else tuple(select.items())) for name, select in parse_path(path))


#: Entries of plain lists that match a selector, by the list's identity (with the list, so that its id
#: is not reused): the lists of a :class:`sim.world.plain.PlainConfig` are never written, and the runs
#: derived from one base share every list they did not change, so each run need not scan them again.
_matched: dict[tuple[int, tuple], tuple[list, list]] = {}


def _matching(items: Sequence, select: tuple[tuple[str, str], ...]) -> list:
    """The entries of ``items`` whose fields ``select`` names hold the given values (as text)."""
    cacheable = type(items) is list  # a DictConfig's ListConfig can be written, so it is scanned each time
    if cacheable:
        hit = _matched.get((id(items), select))
        if hit is not None and hit[0] is items:
            return hit[1]
    found = [item for item in items if all(isinstance(item, Mapping) and str(item.get(k)) == v for k, v in select)]
    if cacheable:
        if len(_matched) >= 4096:
            _matched.clear()
        _matched[(id(items), select)] = (items, found)
    return found


def _locate(scenario: DictConfig, path: str) -> tuple[Any, str]:
    """The node holding the path's last field, and that field's name."""
    node: Any = scenario
    segments = _segments(str(path))
    for i, (name, select) in enumerate(segments):
        last = i == len(segments) - 1
        if not isinstance(node, Mapping) or name not in node:
            raise KeyError(f"no field {name!r}")
        if select is None:
            if last:
                return node, name
            node = node[name]
            continue
        items = node[name]
        if isinstance(items, str) or not isinstance(items, Sequence):
            raise KeyError(f"{name!r} is not a list")
        found = _matching(items, select)
        if len(found) != 1:
            what = ", ".join(f"{k}={v}" for k, v in select)
            raise KeyError(f"{len(found)} entries of {name!r} match {what} (must be exactly one)")
        if last:
            raise KeyError("the path must end in a field, not a list element")
        node = found[0]
    raise KeyError("empty path")  # unreachable: parse_path returns at least one segment


def assumption_value(cfg: DictConfig, path: str) -> float:
    """The current value of the scenario number at ``path`` (relative to ``scenario``)."""
    node, name = _locate(cfg.scenario, path)
    return float(node[name])


def with_assumption(cfg: DictConfig, path: str, value: float) -> DictConfig:
    """A copy of ``cfg`` with the scenario number at ``path`` set to ``value`` (the rest unchanged).

    A whole-number field (months of a ramp, say) keeps its type: ``value`` must then be whole.

    Raises:
        ValueError: a fractional value for a whole-number field.
    """
    out = copy.deepcopy(cfg)
    node, name = _locate(out.scenario, path)
    if _is_whole_field(node[name]):
        if not float(value).is_integer():
            raise ValueError(f"{path} takes whole numbers, not {value!r}")
        node[name] = int(value)
    else:
        node[name] = float(value)
    return out


def _plain(node: Any) -> Any:
    """A configuration node as plain data (a ``DictConfig`` converted, plain data as it is)."""
    return OmegaConf.to_container(node) if isinstance(node, DictConfig) else node


def _is_whole_field(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_assumptions(cfg: DictConfig, fail) -> None:
    """Check every ``scenario.assumptions`` entry: a path to one number of the scenario, and a finite
    range ``low <= value <= high``. ``fail(path, value, allowed)`` raises the caller's error.
    """
    entries = cfg.scenario.get("assumptions") or []
    seen = set()
    for i, a in enumerate(entries):
        p = f"scenario.assumptions[{i}]"
        try:
            node, name = _locate(cfg.scenario, str(a.path))
            value = node[name]
        except (KeyError, ValueError) as exc:
            fail(f"{p}.path", a.path, f"a path to one number of the scenario ({exc})")
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail(f"{p}.path", a.path, f"a path to a number (it holds {_plain(node)[name]!r})")
        if a.path in seen:
            fail(f"{p}.path", a.path, "each number listed once")
        seen.add(a.path)
        low, high = float(a.low), float(a.high)
        if _is_whole_field(value) and not (low.is_integer() and high.is_integer()):
            fail(f"{p}.low/high", [low, high], f"whole numbers ({a.path} holds a whole number)")
        if not low <= float(value) <= high:
            fail(f"{p}.low/high", [low, high], f"a range that contains the scenario's value {float(value)!r}")
        if not low < high:
            fail(f"{p}.high", high, f"a number above low ({low!r})")
        if not str(a.reason).strip():
            fail(f"{p}.reason", a.reason, "why the number is assumed and why this range")
