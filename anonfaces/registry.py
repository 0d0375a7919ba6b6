"""Small name -> class registries for the swappable parts of every stage.

Each stage keeps one registry (detectors, encoders, clusterers, synthesizers,
attacks, ...). The command line takes its choices from the registry, and an
unknown name is refused with the list of valid ones::

    ENCODERS = Registry("encoder")

    @ENCODERS.register("dlib")
    class DlibEncoder: ...

    ENCODERS.get("dlib")      # -> DlibEncoder (also ENCODERS["dlib"])
    ENCODERS.names()          # -> ["dlib", ...]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from anonfaces.errors import BadInputError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            try:
                obj.registry_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise BadInputError(
                f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}"
            ) from None

    __getitem__ = get  # REGISTRY["name"], with the same message for an unknown name

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
