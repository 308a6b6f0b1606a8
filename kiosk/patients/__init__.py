"""Patients: admission from the practice system or directly, and their details."""
