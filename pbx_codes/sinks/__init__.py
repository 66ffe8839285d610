"""Consumers of annotations: the bus and the sinks fed from it."""
