"""Asyncio adapters: the connections around the sans-IO protocol cores (connect, authenticate, reconnect)."""
