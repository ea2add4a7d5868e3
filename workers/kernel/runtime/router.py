"""A tiny method + path router with `{param}` segments; unknown path → 404, wrong method → 405."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kernel.runtime.errors import MethodNotAllowed, NotFound
from kernel.runtime.http import Request, Response

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    segments: tuple[str, ...]


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        segments = tuple(s for s in pattern.split("/") if s)
        self._routes.append(Route(method.upper(), pattern, handler, segments))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return decorator

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        parts = tuple(s for s in path.split("/") if s)
        allowed: list[str] = []
        for route in self._routes:
            params = _match(route.segments, parts)
            if params is None:
                continue
            if route.method == method.upper():
                return route, params
            allowed.append(route.method)
        if allowed:
            raise MethodNotAllowed(
                f"{method.upper()} is not allowed on {path}",
                headers={"allow": ", ".join(sorted(set(allowed)))},
            )
        raise NotFound(f"no route for {path}")


def _match(pattern: tuple[str, ...], parts: tuple[str, ...]) -> dict[str, str] | None:
    if len(pattern) != len(parts):
        return None
    params: dict[str, str] = {}
    for want, got in zip(pattern, parts, strict=True):
        if want.startswith("{") and want.endswith("}"):
            params[want[1:-1]] = got
        elif want != got:
            return None
    return params
