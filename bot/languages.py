"""Which language each player speaks, without asking the database on every update.

The database decides (the player's setting, else the Telegram language code it stored:
game.effective_language in 0008.i18n.sql) and says so in the answers the bot already
fetches: `language` in api.register_player / api.player_profile. Handlers pass it to
`texts.use(...)`; the middleware then remembers it here. An update from a player not
remembered (after a restart, or after `ttl` seconds, so that a change made through
another process is picked up) costs one `api.player_language` call; a player the
database does not know is answered in the language of their Telegram client.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from bot.game import Game, GameError
from bot.texts import Texts

log = logging.getLogger("bot.languages")


class PlayerLanguages:
    def __init__(self, size: int = 100_000, ttl: float = 600.0) -> None:
        self._known: OrderedDict[int, tuple[str, float]] = OrderedDict()
        self._size = size
        self._ttl = ttl

    def get(self, telegram_id: int) -> str | None:
        entry = self._known.get(telegram_id)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self._known[telegram_id]
            return None
        return entry[0]

    def put(self, telegram_id: int, language: str) -> None:
        self._known[telegram_id] = (language, time.monotonic() + self._ttl)
        self._known.move_to_end(telegram_id)
        while len(self._known) > self._size:
            self._known.popitem(last=False)

    def learn(self, telegram_id: int, texts: Texts) -> None:
        """Remember the language of an update's texts if it came from the database."""
        if texts.from_player and self.get(telegram_id) != texts.language:
            self.put(telegram_id, texts.language)

    async def texts_for(self, telegram_id: int, language_code: str | None, game: Game) -> Texts:
        """The update's texts: the remembered language, else the database's, else Telegram's."""
        language = self.get(telegram_id)
        if language is None:
            try:
                language = await game.player_language(telegram_id)
            except GameError as exc:  # the database is down: the handler will say so, in some language
                log.warning("player language unknown", extra={"user_id": telegram_id, "outcome": exc.code})
            if language is not None:
                self.put(telegram_id, language)
        texts = Texts.for_user(language_code, language)
        texts.from_player = language is not None
        return texts
