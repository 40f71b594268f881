from django.urls import path

from .consumers import LiveConsumer

websocket_urlpatterns = [path("workbench/ws/", LiveConsumer.as_asgi())]
