"""The staff inbox: tasks for a person or a role with a due date, and internal messages.
Flows fill it; staff see and complete it on /inbox, the boards show a patient's tasks."""
