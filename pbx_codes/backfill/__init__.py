"""Reading a PBX's own CDRs back into the store: the calls that ended while the live listener was away.

`pbx-codes backfill` runs each CDR record through the same observer code as the live path and stores the result
under the same row identity (`pbx_codes.store.schema.row_identity`), so a leg the listener already stored is not
stored again and running a backfill twice adds nothing.
"""
from pbx_codes.backfill.readers import BackfillError, BackfillStats, read_observations

__all__ = ["BackfillError", "BackfillStats", "read_observations"]
