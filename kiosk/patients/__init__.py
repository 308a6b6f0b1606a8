"""Patients: admission from the practice system or directly, and discharge."""
