"""A composed configuration as plain, read-only Python data, for runs in bulk.

Reading a Hydra/OmegaConf ``DictConfig`` costs microseconds per attribute (type checks, interpolation,
struct mode); a rare_earth_2010 run reads its configuration some 25,000 times while the world is built
and the months are stepped, and a deep copy per run costs as much again. Calibration and exploration
run the same case thousands of times with a few numbers changed, so :class:`sim.experiments.runner.CaseRunner`
composes and checks the case once, turns it into a :class:`PlainConfig` (resolved, every value a plain
Python value) and derives each run's configuration from it with :func:`with_values`, which copies only
the path to each changed number. The model, the world builder and the validation read a
``PlainConfig`` exactly as they read a ``DictConfig`` (``cfg.scenario.goods[0].armington_elasticity``,
``cfg.get("policy")``, ``"kind" in cfg.scenario``); the user-facing Hydra configuration is untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["PlainConfig", "plain_config", "freeze", "split_key", "with_values"]


class PlainConfig(dict):
    """A read-only mapping with attribute access: one node of a resolved configuration.

    Unknown attributes raise ``AttributeError`` (as a struct-mode ``DictConfig`` does), so
    ``getattr(node, name, default)`` works; any write raises ``TypeError``, since nodes are shared
    between the runs derived from one base configuration.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{name!r}: not a key of this configuration node") from None

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a PlainConfig is read-only; derive a changed one with sim.world.plain.with_values")

    __setattr__ = __delattr__ = __setitem__ = __delitem__ = _read_only
    update = setdefault = pop = popitem = clear = _read_only  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict) -> PlainConfig:
        import copy

        return PlainConfig({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def __reduce__(self):
        return (PlainConfig, (dict(self),))


def freeze(data: Any) -> Any:
    """Plain containers (dicts, lists) as :class:`PlainConfig` nodes and lists of them."""
    if isinstance(data, Mapping):
        return PlainConfig({k: freeze(v) for k, v in data.items()})
    if isinstance(data, list | tuple):
        return [freeze(v) for v in data]
    return data


def plain_config(cfg) -> PlainConfig:
    """A composed ``DictConfig`` resolved into a :class:`PlainConfig` (interpolations resolved)."""
    from omegaconf import OmegaConf

    return freeze(OmegaConf.to_container(cfg, resolve=True))


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_key(key: str) -> list[str | int]:
    """The segments of a dotted key (``scenario.goods.0.armington_elasticity`` or
    ``scenario.goods[0].armington_elasticity``): names as strings, list indices as integers.
    """
    out: list[str | int] = []
    for name, index in _SEGMENT.findall(str(key)):
        if index:
            out.append(int(index))
        elif name.isdigit():
            out.append(int(name))
        else:
            out.append(name)
    return out


def _set(node: Any, path: list[str | int], value: Any) -> Any:
    """A copy of ``node`` with the value at ``path`` replaced; only the nodes on the path are copied."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        out = list(node)
        out[int(head)] = _set(node[int(head)], rest, value)
        return out
    items = dict(node)
    items[head] = _set(node[head], rest, value)
    return PlainConfig(items)


def with_values(base: PlainConfig, values: Mapping[str, Any]) -> PlainConfig:
    """``base`` with the values at the given dotted keys replaced (every key must exist in ``base``);
    ``base`` itself is unchanged and shares every untouched node with the result.
    """
    out = base
    for key, value in values.items():
        out = _set(out, split_key(key), freeze(value))
    return out
