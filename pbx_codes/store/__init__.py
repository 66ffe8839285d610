"""The annotation store: SQLite embedded, PostgreSQL shared; batched writes that survive an outage; the console's
queries; unknown codes as a starter catalog."""
from pbx_codes.store.store import Store, StoreConfigError, StoreSettings, open_store, parse_store_settings, run_store

__all__ = ["Store", "StoreConfigError", "StoreSettings", "open_store", "parse_store_settings", "run_store"]
