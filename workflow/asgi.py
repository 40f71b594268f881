"""Django's ASGI handler, with the middleware chain run in one hop to a thread.

Under ASGI, Django runs each middleware that can be async (all of Django's own: they
are ``MiddlewareMixin``) in async mode, and that mode hands every ``process_request``
and ``process_response`` to a thread of its own and back: with the seven of a new
project's settings, about a dozen hops per request, each a few hundred microseconds
of the web server's CPU. API steps, the admin and the workbench's pages are sync
views, so here the whole chain runs as under WSGI, in one thread, reached in one hop;
the middleware, the views and the answers are the same. Async-only middleware still
works (Django adapts it, as it adapts sync middleware under ASGI).

    application = workflow.asgi.get_asgi_application()   # in the project's asgi.py
"""

from typing import Any

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler


class ASGIHandler(DjangoASGIHandler):
    _middleware_chain: Any  # Django's: set by load_middleware

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)


def get_asgi_application() -> ASGIHandler:
    """As ``django.core.asgi.get_asgi_application()``, with this handler."""
    django.setup(set_prefix=False)
    return ASGIHandler()
