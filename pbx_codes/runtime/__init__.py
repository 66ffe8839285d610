"""Composition roots: `serve` (app), the sinks it starts (components) and the live PBX listeners that wire a client,
an observer, the resolver and the annotation bus together. Nothing below this package imports it."""
