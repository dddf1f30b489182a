"""The HTML report parsed with ``html.parser``: elements with their attributes, text and parents."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

VOID = {"meta", "br", "input", "link", "img", "hr", "path", "circle", "rect"}
"""Elements that have no end tag here (SVG's are written self-closed)."""


@dataclass
class Element:
    """One element: tag, attributes, the text directly and wholly inside it, its children."""

    tag: str
    attrs: dict[str, str]
    parent: Element | None = None
    children: list[Element] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def text(self) -> str:
        """All the text inside, in order."""
        return "".join(self.texts) + "".join(child.text() for child in self.children)

    def find_all(self, tag: str, **attrs: str) -> list[Element]:
        """Every descendant with ``tag`` (``"*"`` for any) and these attribute values."""
        found = []
        for child in self.children:
            if (tag in ("*", child.tag)) and all(
                child.attrs.get(key.rstrip("_").replace("_", "-")) == value
                for key, value in attrs.items()
            ):
                found.append(child)
            found += child.find_all(tag, **attrs)
        return found

    def find(self, tag: str, **attrs: str) -> Element:
        """The one descendant that matches; fails the test when there is not exactly one."""
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}> found"
        return found[0]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(
            Element(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        )

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert self.current.tag == tag, f"</{tag}> closes <{self.current.tag}>"
        assert self.current.parent is not None
        self.current = self.current.parent

    def handle_data(self, data: str) -> None:
        self.current.texts.append(data)


def parse(text: str) -> Element:
    """The document tree; fails when an end tag does not match its start tag."""
    parser = _Parser()
    parser.feed(text)
    parser.close()
    assert parser.current is parser.root, f"<{parser.current.tag}> left open"
    return parser.root


def parse_file(path: Path) -> Element:
    return parse(path.read_text(encoding="utf-8"))
