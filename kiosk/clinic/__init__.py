"""The clinic: its settings and its wards."""
