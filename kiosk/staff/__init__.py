"""Staff users, their levels, and sign-in (password on desktops, PIN on shared tablets)."""
