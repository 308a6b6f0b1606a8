"""Anaesthesia sheets: a header, drugs, timed events and vitals, merged from every tablet."""
