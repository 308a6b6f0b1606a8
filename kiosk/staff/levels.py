"""What each staff level is called on screen: one mapping, used by every page that shows
a level (the staff list and forms, the top bar, the tablet's staff list)."""

# DOMAIN.md's levels, named for the people who usually hold them.
LEVEL_NAMES = {
    1: "Kennel assistant",
    2: "Veterinary assistant",
    3: "Nurse",
    4: "Junior veterinarian",
    5: "Veterinarian",
    6: "Manager",
}


def level_name(level) -> str:
    """The name staff see for `level`, with its number: 'Veterinarian (level 5)'."""
    name = LEVEL_NAMES.get(level) if isinstance(level, int) else None
    return f"{name} (level {level})" if name else f"Level {level}"


def level_choices() -> list[tuple[int, str]]:
    """Every level as (number, name) for a form's choice, lowest first."""
    return [(level, level_name(level)) for level in sorted(LEVEL_NAMES)]
