"""Writing annotations back into the PBX (CDR variables, channel variables for the dialplan)."""
