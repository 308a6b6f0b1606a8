"""Reading the <template>s a page carries for the tablet's scripts to fill."""

from html.parser import HTMLParser


class Elements(HTMLParser):
    """Every start tag of a page as (tag, attributes, id of the <template> it is in)."""

    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict, str | None]] = []
        self._templates: list[str | None] = []
        self.text: dict[str, str] = {}  # the text inside each <template>
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        inside = self._templates[-1] if self._templates else None
        self.found.append((tag, attrs, inside))
        if tag == "template":
            self._templates.append(attrs.get("id"))

    def handle_data(self, data):
        if self._templates:
            key = self._templates[-1]
            self.text[key] = self.text.get(key, "") + data

    def handle_endtag(self, tag):
        if tag == "template" and self._templates:
            self._templates.pop()

    def template(self, template_id: str) -> list[tuple[str, dict]]:
        """The elements inside one <template>, in order."""
        return [(tag, attrs) for tag, attrs, inside in self.found if inside == template_id]

    def ids(self) -> set[str]:
        return {attrs["id"] for tag, attrs, _inside in self.found
                if tag == "template" and "id" in attrs}
