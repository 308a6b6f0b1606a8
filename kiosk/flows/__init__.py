"""Smart Flows: workflows that react to what happens in the clinic (a patient admitted, a
value out of range, a schedule) and do things on their own: staff tasks with computed due
dates and reminders, staff messages, notes from templates, forms and messages for clients.

Events become rows (`FlowEvent`) in the transaction that recorded them; a job evaluates
them into runs and steps (rows again), and jobs carry the steps out. See docs/flows.md.
"""
