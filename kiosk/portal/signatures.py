"""A signature typed as a name, drawn into a PNG on the server: a client without
JavaScript (or who prefers not to draw) signs this way, and the form stores the same kind of
value as a drawn signature (a PNG data URL, forms.fields.signature_clean)."""

import base64
import io
import unicodedata

from PIL import Image, ImageDraw, ImageFont

from ..core.errors import DomainError
from ..forms.fields import PNG_PREFIX

WIDTH, HEIGHT = 600, 110
FONT_SIZE = 52
MAX_NAME = 120
# An oblique face reads as a signature; Pillow's own font when the system has none.
FONT_FILES = ("DejaVuSans-Oblique.ttf", "LiberationSans-Italic.ttf")

ERR_TYPED_NAME = "{label}: type your full name (letters, at most {n} characters) to sign."


def _font(size: int):
    for name in FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def typed_name_clean(name, *, key: str, label: str) -> str:
    """The typed name, trimmed, or DomainError naming the field: empty, too long, without a
    letter, or holding control characters."""
    text = " ".join(name.split()) if isinstance(name, str) else ""
    if (not text or len(text) > MAX_NAME or not any(c.isalpha() for c in text)
            or any(unicodedata.category(c).startswith("C") for c in text)):
        raise DomainError("bad_signature", ERR_TYPED_NAME.format(label=label, n=MAX_NAME),
                          field=key)
    return text


def typed_signature_png(name: str) -> str:
    """`name` written on a white strip above a signing line, as a PNG data URL."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    size = FONT_SIZE
    font = _font(size)
    # A long name gets a smaller face until it fits the strip.
    while draw.textlength(name, font=font) > WIDTH - 40 and size > 14:
        size -= 4
        font = _font(size)
    draw.text((20, HEIGHT - 34), name, font=font, fill="#112", anchor="ls")
    draw.line((20, HEIGHT - 24, WIDTH - 20, HEIGHT - 24), fill="#667", width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return PNG_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")
