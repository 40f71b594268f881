"""The workbench's websocket. Staff only; the ASGI router checks the origin."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import live, relay

FORBIDDEN = 4003


def is_staff(user):
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Log lines and run status changes, one JSON message each, as they happen."""

    relayed = False

    async def connect(self):
        if not is_staff(self.scope.get("user")):
            # Accepted, then closed with a code a browser sees (a refused handshake is
            # only "1006" to it), so the page says why and does not reconnect.
            await self.accept()
            await self.close(code=FORBIDDEN)
            return
        await self.channel_layer.group_add(live.GROUP, self.channel_name)
        await self.accept()
        if not live.crosses_processes(self.channel_layer):
            self.relayed = True
            relay.listen()

    async def disconnect(self, code):
        if self.relayed:
            relay.leave()
        await self.channel_layer.group_discard(live.GROUP, self.channel_name)

    async def live_messages(self, event):
        for message in event["messages"]:
            await self.send_json(message)
