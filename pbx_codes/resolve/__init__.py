"""The pure resolver: Observation + catalogs -> Annotation."""
from pbx_codes.resolve.resolver import Resolver, failing_leg

__all__ = ["Resolver", "failing_leg"]
