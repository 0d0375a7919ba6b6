"""Shared helpers: atomic writes, safe unpickling, robust image reading."""
