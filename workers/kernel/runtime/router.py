"""A tiny method + path router with `{param}` segments; unknown path → 404, wrong method → 405.

HEAD is answered by the GET route (RFC 9110 §9.3.2: same status and headers, no body — the app
drops the body); a 405's Allow lists the path's real methods, HEAD included where GET is. A
router built with `options=` answers OPTIONS on any known path with that handler (the gateway's
CORS preflight), which reads the path's methods from `methods()`.
"""

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
    def __init__(self, *, options: Handler | None = None) -> None:
        self._routes: list[Route] = []
        self._options = options

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        segments = tuple(s for s in pattern.split("/") if s)
        self._routes.append(Route(method.upper(), pattern, handler, segments))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return decorator

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(self._routes)

    def _matches(self, path: str) -> list[tuple[Route, dict[str, str]]]:
        parts = tuple(s for s in path.split("/") if s)
        found = []
        for route in self._routes:
            params = _match(route.segments, parts)
            if params is not None:
                found.append((route, params))
        return found

    def methods(self, path: str) -> set[str]:
        """The methods `path` answers (HEAD wherever GET is); empty for an unknown path."""
        methods = {route.method for route, _ in self._matches(path)}
        return methods | {"HEAD"} if "GET" in methods else methods

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        method = method.upper()
        matches = self._matches(path)
        if not matches:
            raise NotFound(f"no route for {path}")
        for wanted in (method, "GET") if method == "HEAD" else (method,):
            for route, params in matches:
                if route.method == wanted:
                    return route, params
        if method == "OPTIONS" and self._options is not None:
            route, params = matches[0]
            return Route("OPTIONS", route.pattern, self._options, route.segments), params
        raise MethodNotAllowed(
            f"{method} is not allowed on {path}",
            headers={"allow": ", ".join(sorted(self.methods(path)))},
        )


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
