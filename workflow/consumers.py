"""The workbench's websockets. Staff only; the ASGI router checks the origin."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import live

FORBIDDEN = 4003


class LogTailConsumer(AsyncJsonWebsocketConsumer):
    """A live tail of step log lines: one JSON message per line, as it is stored."""

    async def connect(self):
        user = self.scope.get("user")
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            await self.close(code=FORBIDDEN)
            return
        await self.channel_layer.group_add(live.GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(live.GROUP, self.channel_name)

    async def log_line(self, event):
        await self.send_json(event["line"])
