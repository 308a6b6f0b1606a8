"""Tablets and wall displays: their identity and tokens."""
