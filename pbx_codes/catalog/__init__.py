"""Catalog data and its loader: the shipped TOML files in `data/`, user directories, validation."""
from pbx_codes.catalog.loader import CatalogSet, load_catalogs, parse_file, validate_file
from pbx_codes.catalog.schema import Catalog, CatalogError, Entry, fold

__all__ = ["Catalog", "CatalogError", "CatalogSet", "Entry", "fold", "load_catalogs", "parse_file", "validate_file"]
