"""The parts of a component's spec.md that the tools read: its Query Patterns.

A spec may list the queries the application depends on under a heading
"Query Patterns" (any level), each under its own sub-heading with a fenced
```` ```sql ```` block. Those become the component's workload when no
``workload.sql`` has been recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt

_SECTION = re.compile(r"^\s*query\s+patterns?\s*$", re.IGNORECASE)
_DDL = re.compile(r"^\s*(create|alter|drop)\b", re.IGNORECASE)
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SpecQuery:
    """A SQL block of the spec's Query Patterns section."""

    name: str
    sql: str
    line: int  # 1-based line of the opening fence


def query_patterns(text: str) -> list[SpecQuery]:
    """Named SQL blocks of the "Query Patterns" section (empty when there is none).

    A block is named after the nearest heading above it inside the section
    (``### customer_orders_by_status`` → ``customer_orders_by_status``); a second
    block under the same heading gets ``_2``; blocks whose info string is not
    ``sql`` (or empty) are ignored.
    """
    tokens = MarkdownIt("commonmark").parse(text)
    found: list[SpecQuery] = []
    section_level: int | None = None
    heading: str | None = None
    counts: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            level = int(token.tag[1:])
            title = tokens[i + 1].content if i + 1 < len(tokens) else ""
            if section_level is not None and level <= section_level:
                section_level = None  # the section ended
            if section_level is None:
                if _SECTION.match(title):
                    section_level, heading = level, None
                continue
            heading = title
        elif token.type == "fence" and section_level is not None:
            info = token.info.strip().split()[0].lower() if token.info.strip() else ""
            if info not in ("sql", "") or not token.content.strip():
                continue
            if _DDL.match(token.content):
                continue  # an index or table definition shown in the section, not a query
            base = _name(heading) or "query"
            counts[base] = counts.get(base, 0) + 1
            name = base if counts[base] == 1 else f"{base}_{counts[base]}"
            line = (token.map[0] + 1) if token.map else 0
            found.append(SpecQuery(name, token.content.strip().rstrip(";").strip(), line))
    return found


def _name(heading: str | None) -> str:
    if not heading:
        return ""
    text = heading.strip().strip("`").strip()
    return _NAME_CHARS.sub("_", text).strip("_")[:60]
