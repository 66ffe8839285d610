"""Observers turn one PBX's events into `Observation`s; all PBX-specific hangup knowledge lives here."""
