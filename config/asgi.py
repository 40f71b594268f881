"""ASGI entry point, served by daphne (runserver uses it too)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from workflow.asgi import get_asgi_application  # noqa: E402  (Django's, one thread hop)

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from workbench.routing import websocket_urlpatterns  # noqa: E402

websockets = URLRouter(websocket_urlpatterns)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The admin's session and login; origins must be in ALLOWED_HOSTS.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(websockets)),
    }
)
