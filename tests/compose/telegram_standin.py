"""The Bot API stand-in (bot/dev/local_botapi.py) as a Compose service, strict mode, with a
small control API for a test outside the stack, playing the users:

    POST /_control/message {"user_id", "first_name", "text"}  a user sends a text (queued
                                                               for the bot's getUpdates)
    POST /_control/press {"user_id", "label"}                 a user taps a button of the
                                                               bot's latest message
    GET  /_control/last/{user_id}                              the bot's latest message there
    GET  /_control/answers/{callback_id}                       the bot's answers to a tap

Only in tests/compose/docker-compose.dev.yml: a test double never reaches the production
file or an image.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from aiohttp import web

from bot.dev.local_botapi import Player, TelegramStub, callback_id_of


class Control:
    def __init__(self, stub: TelegramStub) -> None:
        self.stub = stub
        self.players: dict[int, Player] = {}

    def player(self, body: dict[str, Any]) -> Player:
        user_id = int(body["user_id"])
        if user_id not in self.players:
            self.players[user_id] = self.stub.user(user_id, str(body.get("first_name") or "Ann"))
        return self.players[user_id]

    async def message(self, request: web.Request) -> web.Response:
        body = await request.json()
        update = self.player(body).message(str(body["text"]))
        self.stub.enqueue(update)
        return web.json_response({"update_id": update["update_id"]})

    async def press(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            update = self.player(body).press(str(body["label"]))
        except AssertionError as e:  # no such button, or no message yet: the test's mistake
            return web.json_response({"error": str(e)}, status=409)
        self.stub.enqueue(update)
        return web.json_response({"update_id": update["update_id"], "callback_id": callback_id_of(update)})

    async def last(self, request: web.Request) -> web.Response:
        messages = self.stub.bot_messages(int(request.match_info["user_id"]))
        return web.json_response(messages[-1] if messages else None)

    async def answers(self, request: web.Request) -> web.Response:
        return web.json_response(self.stub.callbacks.get(request.match_info["callback_id"], {}).get("answers", []))


async def serve(port: int, token: str) -> None:
    stub = TelegramStub(token)
    control = Control(stub)
    stub.app.router.add_post("/_control/message", control.message)
    stub.app.router.add_post("/_control/press", control.press)
    stub.app.router.add_get("/_control/last/{user_id}", control.last)
    stub.app.router.add_get("/_control/answers/{callback_id}", control.answers)
    url = await stub.start("0.0.0.0", port)  # inside its container: the bot reaches it by service name
    print(f"Bot API stand-in on {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await stub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST-token_for-the-stand-in")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.token))


if __name__ == "__main__":
    main()
