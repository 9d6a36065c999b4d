"""Which files go into which task: the job's default mode and its per-folder rules.

A rule names a folder and a mode; it covers that folder and every folder under it, and
the deepest rule over a file wins. Files under no rule follow the job's default mode.
COMBINED makes one task per folder: the files directly in a folder, so a sub-folder under
a combined rule is a task of its own (the same meaning the job-wide combined mode has).

Start and PlanTasks both plan with `plan_tasks`, so the count the Rules page shows is the
count start queues.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from bytereview.core.errors import InvalidArgument
from services.jobs.domain.status import TaskMode

MODES = (TaskMode.INDIVIDUAL, TaskMode.COMBINED)
# One rule per folder at most, and a job holds at most tens of thousands of files.
MAX_RULES = 10_000


@dataclass(frozen=True, slots=True)
class FolderRule:
    folder: str
    task_mode: str

    def as_dict(self) -> dict[str, str]:
        return {"folder": self.folder, "task_mode": self.task_mode}


class InFolder(Protocol):
    """A file as planning sees it: a source_files row, or just its `folder` column."""

    @property
    def folder(self) -> str: ...


F = TypeVar("F", bound=InFolder)


@dataclass(frozen=True, slots=True)
class TaskGroup(Generic[F]):
    folder: str
    mode: str
    files: list[F]


@dataclass(frozen=True, slots=True)
class FolderPlan:
    folder: str
    mode: str
    file_count: int
    task_count: int


def rules_from_dicts(raw: Iterable[Mapping[str, str]]) -> list[FolderRule]:
    return [FolderRule(r["folder"], r["task_mode"]) for r in raw]


def _ancestors(folder: str) -> Iterable[str]:
    """`a/b/c` -> `a/b/c`, `a/b`, `a`: the folders whose rule could cover it, deepest first."""
    parts = folder.split("/") if folder else []
    for end in range(len(parts), 0, -1):
        yield "/".join(parts[:end])


def known_folders(file_folders: Iterable[str]) -> set[str]:
    """Every folder a rule may name: each file's folder and the folders above it."""
    known: set[str] = set()
    for folder in set(file_folders):
        known.update(_ancestors(folder))
    return known


def check_rules(rules: Sequence[FolderRule], file_folders: Iterable[str]) -> list[FolderRule]:
    """The rules, checked against the job's folders: InvalidArgument names the first wrong one.

    The folders are the job's own, so naming another job's folder tells nothing about it."""
    if len(rules) > MAX_RULES:
        raise InvalidArgument(f"at most {MAX_RULES} folder rules")
    known = known_folders(file_folders)
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        where = f"folder_rules[{index}]"
        if not rule.folder:
            raise InvalidArgument(
                f"{where}.folder is empty: the job's task_mode covers the top level"
            )
        if rule.task_mode not in MODES:
            raise InvalidArgument(
                f"{where}.task_mode must be TASK_MODE_INDIVIDUAL or TASK_MODE_COMBINED"
            )
        if rule.folder in seen:
            raise InvalidArgument(f"{where}: folder {rule.folder!r} has two rules")
        if rule.folder not in known:
            raise InvalidArgument(f"{where}: the job has no usable file in folder {rule.folder!r}")
        seen.add(rule.folder)
    return list(rules)


def mode_of(folder: str, default: str, rules: Mapping[str, str]) -> str:
    for candidate in _ancestors(folder):
        if candidate in rules:
            return rules[candidate]
    return default


def plan_tasks(files: Sequence[F], default: str, rules: Sequence[FolderRule]) -> list[TaskGroup[F]]:
    """The tasks in the order of their first file (`files` come sorted by path): each
    combined folder one group, every other file alone."""
    by_folder = {r.folder: r.task_mode for r in rules}
    mode = TaskMode.COMBINED if default == TaskMode.COMBINED else TaskMode.INDIVIDUAL
    combined: dict[str, TaskGroup[F]] = {}
    groups: list[TaskGroup[F]] = []
    for f in files:
        chosen = mode_of(f.folder, mode, by_folder)
        if chosen == TaskMode.COMBINED:
            group = combined.get(f.folder)
            if group is None:
                group = combined[f.folder] = TaskGroup(f.folder, chosen, [])
                groups.append(group)
            group.files.append(f)
        else:
            groups.append(TaskGroup(f.folder, chosen, [f]))
    return groups


def summarise(groups: Sequence[TaskGroup[F]]) -> list[FolderPlan]:
    """Per folder: its mode, files and tasks, in folder order."""
    out: dict[str, list[int]] = {}
    modes: dict[str, str] = {}
    for g in groups:
        counts = out.setdefault(g.folder, [0, 0])
        counts[0] += len(g.files)
        counts[1] += 1
        modes[g.folder] = g.mode
    return [FolderPlan(f, modes[f], c[0], c[1]) for f, c in sorted(out.items())]
