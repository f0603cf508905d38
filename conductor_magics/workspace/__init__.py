"""The storage-conductor files: read leniently, written minimally and atomically.

Knows Markdown and JSON only: no Jupyter and no database imports.
"""

from .components import Component, Workspace, is_safe_id
from .context import ContextDocuments, load_context
from .plan import Phase, Plan, Task, parse_plan, read_plan
from .problems import Problem
from .status import STATUSES
from .workflow import WorkflowPreferences, parse_workflow

__all__ = [
    "STATUSES", "Component", "ContextDocuments", "Phase", "Plan", "Problem", "Task",
    "WorkflowPreferences", "Workspace", "is_safe_id", "load_context", "parse_plan",
    "parse_workflow", "read_plan",
]
