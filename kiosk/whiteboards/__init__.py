"""Wall-mounted whiteboards: a ward's board or a hand-made list of patients."""
