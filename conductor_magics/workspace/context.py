"""The context documents a component is implemented with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .workflow import WorkflowPreferences, parse_workflow

#: document name → file name in storage-conductor/
SHARED_DOCS = {
    "product": "product.md",
    "tech-stack": "tech-stack.md",
    "workflow": "workflow.md",
    "storage-standards": "storage-standards.md",
    "storage-template": "storage-template.md",
}
#: document name → file name in storages/<id>/
COMPONENT_DOCS = {"spec": "spec.md", "plan": "plan.md", "metadata": "metadata.json"}
DOC_NAMES = tuple(SHARED_DOCS) + tuple(COMPONENT_DOCS)


def doc_path(workspace_dir: Path, component_dir: Path, name: str) -> Path:
    if name in SHARED_DOCS:
        return workspace_dir / SHARED_DOCS[name]
    return component_dir / COMPONENT_DOCS[name]


def normalise_doc_name(name: str) -> str | None:
    """``Tech Stack``, ``tech_stack.md`` → ``tech-stack``; None if not a document."""
    key = name.strip().lower().removesuffix(".md").removesuffix(".json").replace("_", "-").replace(" ", "-")
    return key if key in DOC_NAMES else None


@dataclass
class ContextDocuments:
    """Every context document of a component, as text; missing ones are listed."""

    component_id: str
    docs: dict[str, str]
    paths: dict[str, Path]
    missing: list[str]
    styleguides: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.docs[name]

    @property
    def workflow_preferences(self) -> WorkflowPreferences:
        return parse_workflow(self.docs.get("workflow"))


def read_text_lenient(path: Path) -> str:
    """A document's text; bad UTF-8 bytes become U+FFFD (lint reports them)."""
    return path.read_bytes().decode("utf-8-sig", errors="replace")


def load_context(workspace_dir: Path, component_dir: Path, component_id: str) -> ContextDocuments:
    docs: dict[str, str] = {}
    paths: dict[str, Path] = {}
    missing: list[str] = []
    for name in DOC_NAMES:
        path = doc_path(workspace_dir, component_dir, name)
        paths[name] = path
        if path.is_file():
            docs[name] = read_text_lenient(path)
        else:
            missing.append(name)
    guides: dict[str, str] = {}
    guide_dir = workspace_dir / "code_styleguides"
    if guide_dir.is_dir():
        for path in sorted(guide_dir.glob("*.md")):
            guides[path.stem] = read_text_lenient(path)
    return ContextDocuments(component_id, docs, paths, missing, guides)
