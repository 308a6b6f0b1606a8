"""The patients' owners: who the clinic writes to, how, and what they agreed to."""
