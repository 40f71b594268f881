"""The workbench's websocket: for staff users with the feed's view permissions
(``permissions.FEED``), checked when it connects and again every
``WORKFLOW["WORKBENCH_RECHECK"]`` seconds from the database, so a user who lost them,
was deactivated or logged out stops receiving. The ASGI router checks the origin."""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from workflow.conf import workflow_settings

from . import live, permissions, relay

FORBIDDEN = 4003


@database_sync_to_async
def allowed(scope, *, again=False):
    user = permissions.current_user(scope) if again else scope.get("user")
    return permissions.may_follow(user)


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Log lines and run status changes, one JSON message each, as they happen."""

    relayed = False
    rechecks = None

    async def connect(self):
        if not await allowed(self.scope):
            # Accepted, then closed with a code a browser sees (a refused handshake is
            # only "1006" to it), so the page says why and does not reconnect.
            await self.accept()
            await self.close(code=FORBIDDEN)
            return
        await self.channel_layer.group_add(live.GROUP, self.channel_name)
        await self.accept()
        self.rechecks = asyncio.create_task(self.recheck())
        if not live.crosses_processes(self.channel_layer):
            self.relayed = True
            relay.listen()

    async def recheck(self):
        """Close with 4003 once the user may no longer follow the feed."""
        while True:
            await asyncio.sleep(workflow_settings.WORKBENCH_RECHECK)
            if not await allowed(self.scope, again=True):
                await self.channel_layer.group_discard(live.GROUP, self.channel_name)
                await self.close(code=FORBIDDEN)
                return

    async def disconnect(self, code):
        if self.rechecks is not None:
            self.rechecks.cancel()
        if self.relayed:
            relay.leave()
            self.relayed = False
        await self.channel_layer.group_discard(live.GROUP, self.channel_name)

    async def live_messages(self, event):
        for message in event["messages"]:
            await self.send_json(message)
