"""The types to annotate handlers with: what each type of step's handler gets and returns.

    from typing import Any

    from workflow.handlers import ApiRequest, ApiResponse, Context

    def handler(request: ApiRequest, ctx: Context) -> ApiResponse: ...  # ApiStep
    def handler(input: dict[str, Any], ctx: Context) -> None: ...  # EventStep
    def handler(ctx: Context) -> None: ...  # CronStep

An ``async def`` handler gets an ``AsyncContext`` (awaitable ``emit`` and ``state``).
``ApiRouteHandler``, ``EventHandler``, ``CronHandler`` and ``Middleware`` are these
signatures as types (Motia's names), for code that takes or returns handlers.
"""

from collections.abc import Awaitable, Callable
from typing import Any, Required, TypeAlias, TypedDict

from django.http import HttpResponseBase

from .aio import AsyncContext
from .context import Context
from .views import ApiRequest

__all__ = [
    "ApiRequest",
    "ApiResponse",
    "ApiRouteHandler",
    "AsyncContext",
    "Context",
    "CronHandler",
    "EventHandler",
    "Middleware",
]


class ApiResponse(TypedDict, total=False):
    """What an API step's handler returns: ``{"status": 201, "body": {...}}``."""

    status: Required[int]
    body: Any
    headers: dict[str, str]


ApiResult: TypeAlias = ApiResponse | HttpResponseBase
"""An ``ApiResponse``, or a Django response the handler built itself."""

ApiRouteHandler: TypeAlias = (
    Callable[[ApiRequest, Context], ApiResult]
    | Callable[[ApiRequest, AsyncContext], Awaitable[ApiResult]]
)
EventHandler: TypeAlias = (
    Callable[[dict[str, Any], Context], object]
    | Callable[[dict[str, Any], AsyncContext], Awaitable[object]]
)
CronHandler: TypeAlias = Callable[[Context], object] | Callable[[AsyncContext], Awaitable[object]]

Middleware: TypeAlias = (
    Callable[[ApiRequest, Context, Callable[[], ApiResult]], ApiResult]
    | Callable[[ApiRequest, AsyncContext, Callable[[], Awaitable[ApiResult]]], Awaitable[ApiResult]]
)
"""``mw(request, ctx, next)``: ``next()`` runs the rest of the chain and returns its result."""
