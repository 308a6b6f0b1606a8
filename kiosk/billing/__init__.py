"""Billing: charges captured once from what caused them, end-of-shift marks, the billing
report, and the connectors that take charges to the practice system."""
