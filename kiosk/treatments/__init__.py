"""Treatment orders, the tasks they generate, completions, skips, stops and notes."""
