"""Discharge: checks first (nothing waiting on a device, nothing unfinished, documents
archived), a manager's override with a reason, the discharge summary PDF."""
