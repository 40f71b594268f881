"""``async def`` handlers and middleware, run from the runtime's synchronous code.

The runtime is synchronous (a django-q2 worker thread, a DRF view), and what makes an
attempt all or nothing lives there: the request's transaction, the attempt's held
writes. An async handler is run with asgiref's ``async_to_sync`` and gets an
``AsyncContext``: the same context, with awaitable forms of its methods

    await ctx.emit("email.sent", data)
    user = await ctx.state.get("users", user_id)
    await ctx.state.update("counters", "sent", lambda n: n + 1, default=0)
    ctx.logger.info("Sent", userId=user_id)  # the logger is not awaited, as in Motia

Each awaitable runs the synchronous method with ``sync_to_async(thread_sensitive=True)``,
in the very thread that called ``async_to_sync``: the thread holding the request's
transaction and the attempt's database connection. So an async handler keeps every
guarantee of a sync one: its emits and state writes commit with its outcome, and an
exception discards them. Django's async ORM (``await Model.objects.aget(...)``) takes
the same thread, so its queries are in that transaction too.

A call such as ``ctx.emit(...)`` that is never awaited would do nothing; the handler
then fails with a message saying where to add ``await``.
"""

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async

from .errors import HandlerTimeout

if TYPE_CHECKING:
    from .context import Context, EmitMessage
    from .logs import StepLogger
    from .registry import RegisteredStep
    from .state import State


def is_async(fn: object) -> bool:
    """True for an ``async def`` function, or an object whose ``__call__`` is one."""
    if iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 (a callable object's own method)
    return not inspect.isfunction(fn) and call is not None and iscoroutinefunction(call)


class NotAwaited(TypeError):
    """An async handler called a context method without ``await``."""


class _Call:
    """A context method call from async code: runs in the caller's sync thread when awaited."""

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], label: str
    ) -> None:
        self.fn, self.args, self.kwargs, self.label = fn, args, kwargs, label
        self.awaited = False

    def __await__(self) -> Generator[Any, None, Any]:
        self.awaited = True
        run = sync_to_async(self.fn, thread_sensitive=True)
        return run(*self.args, **self.kwargs).__await__()


class _Calls:
    """The calls an async handler made, to find those it forgot to await."""

    def __init__(self) -> None:
        self.made: list[_Call] = []

    def make(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], label: str
    ) -> _Call:
        call = _Call(fn, args, kwargs, label)
        self.made.append(call)
        return call

    def check(self) -> None:
        missed = [call.label for call in self.made if not call.awaited]
        self.made = [call for call in self.made if not call.awaited]
        if missed:
            raise NotAwaited(
                f"{', '.join(missed)} was called without await, so it did nothing; in an "
                f"async handler write `await {missed[0]}(...)`"
            )


class AsyncState:
    """``ctx.state`` for async code: each method of ``State`` returns an awaitable."""

    def __init__(self, state: "State", calls: _Calls) -> None:
        self._state = state
        self._calls = calls

    def _call(self, name: str, *args: Any) -> Awaitable[Any]:
        return self._calls.make(getattr(self._state, name), args, {}, f"ctx.state.{name}")

    def get(self, group: str, key: str, default: Any = None) -> Awaitable[Any]:
        return self._call("get", group, key, default)

    def set(self, group: str, key: str, value: Any) -> Awaitable[Any]:
        return self._call("set", group, key, value)

    def delete(self, group: str, key: str) -> Awaitable[bool]:
        return self._call("delete", group, key)

    def get_group(self, group: str) -> Awaitable[dict[str, Any]]:
        return self._call("get_group", group)

    def clear(self, group: str) -> Awaitable[int]:
        return self._call("clear", group)

    def update(
        self, group: str, key: str, fn: Callable[[Any], Any], default: Any = None
    ) -> Awaitable[Any]:
        return self._call("update", group, key, fn, default)


class AsyncContext:
    """The context an async handler or middleware gets: awaitable ``emit`` and ``state``.

    ``trace_id``, ``flows``, ``logger`` and ``step`` are the wrapped context's.
    """

    # Read from the wrapped context (``__getattr__``); declared for editors and mypy.
    step: "RegisteredStep"
    trace_id: str
    flows: list[str]
    logger: "StepLogger"

    def __init__(self, ctx: "Context") -> None:
        self.sync = ctx
        self._calls = _Calls()
        self.state = AsyncState(ctx.state, self._calls)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sync, name)

    def emit(
        self,
        topic: "str | EmitMessage",
        data: Any = None,
        *,
        delay: float | None = None,
        idempotency_key: str | int | None = None,
    ) -> Awaitable[None]:
        """``await ctx.emit(topic, data)``: ``Context.emit``, from async code."""
        options = {"delay": delay, "idempotency_key": idempotency_key}
        return self._calls.make(self.sync.emit, (topic, data), options, "ctx.emit")

    def check_awaited(self) -> None:
        self._calls.check()


class Chain:
    """Call ``links`` (middleware, then the handler) with ``args`` and the context.

    Every link but the last also gets ``next``, which calls the rest of the chain and
    returns its result. Sync links get ``ctx`` and a plain ``next()``; async links get
    the ``AsyncContext`` and an awaitable ``next()``. Neighbouring async links call
    each other directly; the chain crosses into async or back only where the kind of
    link changes.
    """

    def __init__(self, links, args, ctx, timeout=None):
        self.links = list(links)
        self.args = tuple(args)
        self.ctx = ctx
        self.actx = None
        self.timeout = timeout  # seconds async code may run before it is cancelled
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def __call__(self):
        return self._sync(0)

    def _has_next(self, index):
        return index < len(self.links) - 1

    def _sync(self, index):
        link = self.links[index]
        if is_async(link):
            return async_to_sync(self._async_until_deadline)(index)
        if self._has_next(index):
            return link(*self.args, self.ctx, lambda: self._sync(index + 1))
        return link(*self.args, self.ctx)

    async def _async_until_deadline(self, index):
        """``_async(index)``, cancelled at the deadline: then ``HandlerTimeout``."""
        if self.deadline is None:
            return await self._async(index)
        left = self.deadline - time.monotonic()
        timeout = asyncio.timeout(max(left, 0))
        try:
            async with timeout:
                return await self._async(index)
        except TimeoutError:
            if timeout.expired():  # ours, not one the handler's own code raised
                raise HandlerTimeout(self.timeout) from None
            raise

    async def _async(self, index):
        link = self.links[index]
        if not is_async(link):
            return await sync_to_async(self._sync, thread_sensitive=True)(index)
        if self.actx is None:
            self.actx = AsyncContext(self.ctx)
        if self._has_next(index):
            result = await link(*self.args, self.actx, lambda: self._async(index + 1))
        else:
            result = await link(*self.args, self.actx)
        self.actx.check_awaited()
        return result


def call_handler(handler, args, ctx, timeout=None):
    """``handler(*args, ctx)``, sync or async, from sync code; returns its result. An
    async handler still running after ``timeout`` seconds is cancelled (``HandlerTimeout``)."""
    return Chain([handler], args, ctx, timeout)()
