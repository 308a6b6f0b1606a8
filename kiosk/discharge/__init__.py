"""Discharge: checks first (nothing waiting on a device, nothing unfinished, no failed
PDF), a manager's override with a reason, the discharge summary queued for the documents
worker; its page, and what it adds to the pending boards."""
