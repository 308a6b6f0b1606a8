"""Maintenance windows (planned: what switches on at the start and back at the end) and
outages (a window's, or one the tablets' offline work revealed), with the report that
says what to check once the server is back."""
