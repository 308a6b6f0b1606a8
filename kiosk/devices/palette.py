"""The fixed device colours: what a swatch of each looks like on screen and on paper."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Swatch:
    """One device colour: its name, fill, text colour and outline."""

    name: str
    background: str
    text: str
    border: str

    @property
    def css_class(self) -> str:
        """The stylesheet's class for this colour (device-red …): pages allow no style
        attributes (Content-Security-Policy), so a swatch is coloured by its class."""
        return "device-" + self.name.lower()


# Text colours are chosen for a WCAG contrast of at least 4.5 against the fill, so a
# number stays readable on a printed label; white needs a dark outline or it vanishes
# against the paper.
PALETTE: dict[str, Swatch] = {
    "red": Swatch("Red", "#c62828", "#ffffff", "#c62828"),
    "orange": Swatch("Orange", "#f77f00", "#000000", "#f77f00"),
    "yellow": Swatch("Yellow", "#ffd60a", "#000000", "#ffd60a"),
    "green": Swatch("Green", "#2e7d32", "#ffffff", "#2e7d32"),
    "blue": Swatch("Blue", "#1565c0", "#ffffff", "#1565c0"),
    "purple": Swatch("Purple", "#6a1b9a", "#ffffff", "#6a1b9a"),
    "black": Swatch("Black", "#111111", "#ffffff", "#111111"),
    "white": Swatch("White", "#ffffff", "#000000", "#555555"),
}

COLOURS: tuple[str, ...] = tuple(PALETTE)

UNKNOWN = Swatch("Unknown", "#8d99ae", "#000000", "#5c6b7a")


def swatch(colour: str) -> Swatch:
    """The swatch for a colour name (any case), or a neutral grey one for anything else."""
    # Colours come from stored rows; an old or hand-edited value must still print.
    key = colour.strip().lower() if isinstance(colour, str) else ""
    return PALETTE.get(key, UNKNOWN)
