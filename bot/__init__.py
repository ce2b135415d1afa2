"""The Telegram bot: a thin aiogram 3 caller of the game's SQL functions."""
