"""Plan files: FJSP (Brandimarte .fjs), JSPLIB, and PlantPulse's own JSON plan format.

Benchmark files name machines by number. Both readers name them "M1".."Mn", and
name jobs "J1".."Jn" in file order, so one benchmark reads the same from either format.

The JSON plan format, version 1, mirrors `scheduler.plan` field for field::

    {
      "format": "plantpulse-plan",
      "version": 1,
      "name": "line-3 morning",
      "crews": [{"skill": "electrician", "size": 2}, {"skill": "maintenance", "size": 1}],
      "machines": ["M1", "M2"],
      "jobs": [
        {
          "id": "J1",
          "release": 0,
          "due": 40,
          "weight": 1.0,
          "operations": [
            {"options": [{"machine": "M1", "duration": 5}, {"machine": "M2", "duration": 7}]},
            {"options": [{"machine": "M2", "duration": 3}]}
          ]
        }
      ],
      "maintenance": [
        {"machine": "M2", "deadline": 20, "duration": 4, "cost": 150.0, "reason": "RUL p10",
         "action": "replace-drive", "skill": "electrician", "crew_size": 2}
      ],
      "downtime": [{"machine": "M1", "start": 0, "end": 6, "reason": "spindle failure"}],
      "fixed": [{"job": "J1", "operation": 0, "machine": "M2", "start": 0}],
      "reference": [{"job": "J1", "operation": 1, "machine": "M2", "start": 9}],
      "reference_windows": [{"machine": "M2", "start": 7}]
    }

"format", "version", "machines" and "jobs" are required. In a job, "release" defaults to
0, "due" to null (no due date) and "weight" to 1.0. A maintenance entry's "deadline" is
null for no limit, "reason" and "action" default to "", "skill" to "maintenance" and
"crew_size" (the people the window needs) to 1. "crews" lists the people per skill. A
file without "crews" has one crew of skill "maintenance" whose size is "crew_size"
(default 1), and a file with "crews" must not give "crew_size". "maintenance",
"downtime", "fixed", "reference" and "reference_windows" default to empty lists. A downtime's "end" is null
for down until further notice. Durations, releases, due dates, deadlines and starts
are integer time units from the plan's start. Unknown keys are rejected so that a
misspelt key cannot be ignored silently.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, ValidationError

from scheduler.plan import (
    DEFAULT_SKILL,
    Crew,
    Job,
    MachineDowntime,
    MachineMaintenance,
    Operation,
    OperationAssignment,
    OperationOption,
    Plan,
    PlanError,
    WindowAssignment,
)

JSON_FORMAT = "plantpulse-plan"
JSON_VERSION = 1


class PlanFileError(ValueError):
    """A plan file that cannot be read, with the file, the line when known, and why."""

    def __init__(self, path: str | os.PathLike[str], line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}, line {line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """Read a plan file in whichever supported format it is in.

    A ".fjs" file is read as FJSP and a ".json" file as a JSON plan. Other files are
    recognized by content: a file that starts with "{" is a JSON plan, and one that
    `_looks_like_fjs` accepts is FJSP. Anything else is read as JSPLIB.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".fjs":
        return read_fjs(path)
    if suffix == ".json":
        return read_plan_json(path)

    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        return read_plan_json(path)

    if _looks_like_fjs(text):
        return read_fjs(path)
    return read_jsplib(path)


def _looks_like_fjs(text: str) -> bool:
    """Tell FJSP from JSPLIB text, which both start with "jobs machines".

    Only JSPLIB has "#" comments. An FJSP header may add a third number, the average
    options per operation. Otherwise a JSPLIB job line has exactly two numbers per
    machine, which an FJSP job line has only by coincidence.
    """
    if any(line.lstrip().startswith("#") for line in text.splitlines()):
        return False

    lines = [content.split() for _, content in _content_lines(text, comment_prefix=None)]
    if not lines:
        return False

    header = lines[0]
    if len(header) == 3:
        return True
    if len(lines) < 2 or len(header) != 2 or not header[1].isdigit():
        return False
    return len(lines[1]) != 2 * int(header[1])


def read_fjs(path: str | os.PathLike[str]) -> Plan:
    """Read a flexible job shop file in the FJSP (Brandimarte) text format.

    The first line is "jobs machines [average options per operation]". Each of the next
    `jobs` lines is one job: its number of operations, then for each operation the
    number k of eligible machines followed by k pairs of 1-based machine number and
    duration. Blank lines are skipped.

    Raises:
        PlanFileError: the file does not follow this format, naming the line.
        OSError: the file cannot be opened.
    """
    path = Path(path)
    lines = _content_lines(path.read_text(encoding="utf-8"), comment_prefix=None)

    header = _next_line(lines, path, "a header line 'jobs machines [average]'")
    if len(header.tokens) not in (2, 3):
        header.fail(f"expected 'jobs machines [average]', found {header.text!r}")
    job_count = header.take_int("the number of jobs", minimum=0)
    machine_count = header.take_int("the number of machines", minimum=1)
    machines = tuple(f"M{number}" for number in range(1, machine_count + 1))

    jobs = []
    for job_number in range(1, job_count + 1):
        line = _next_line(lines, path, f"job line {job_number} of {job_count}")
        operation_count = line.take_int("the number of operations", minimum=1)

        operations = []
        for operation_number in range(1, operation_count + 1):
            step = f"operation {operation_number}"
            option_count = line.take_int(f"the number of machines of {step}", minimum=1)
            options = []
            for _ in range(option_count):
                machine = line.take_int(f"a machine number of {step}", 1, machine_count)
                duration = line.take_int(f"a duration of {step}", minimum=1)
                options.append(OperationOption(machines[machine - 1], duration))
            operations.append(line.build(Operation, tuple(options)))

        line.expect_end(f"{operation_count} operations")
        jobs.append(line.build(Job, f"J{job_number}", tuple(operations)))

    _expect_end_of_file(lines, path, f"{job_count} job lines")
    return Plan(machines=machines, jobs=tuple(jobs), name=path.stem)


def read_jsplib(path: str | os.PathLike[str]) -> Plan:
    """Read a job shop file in the JSPLIB text format.

    Lines starting with "#" are comments. The first other line is "jobs machines". Each
    of the next `jobs` lines is one job: `machines` pairs of 0-based machine number and
    duration, in processing order. Blank lines are skipped.

    Raises:
        PlanFileError: the file does not follow this format, naming the line.
        OSError: the file cannot be opened.
    """
    path = Path(path)
    lines = _content_lines(path.read_text(encoding="utf-8"), comment_prefix="#")

    header = _next_line(lines, path, "a header line 'jobs machines'")
    job_count = header.take_int("the number of jobs", minimum=0)
    machine_count = header.take_int("the number of machines", minimum=1)
    header.expect_end("'jobs machines'")
    machines = tuple(f"M{number}" for number in range(1, machine_count + 1))

    jobs = []
    for job_number in range(1, job_count + 1):
        line = _next_line(lines, path, f"job line {job_number} of {job_count}")
        if len(line.tokens) != 2 * machine_count:
            line.fail(
                f"expected {2 * machine_count} numbers ({machine_count} pairs of machine and "
                f"duration), found {len(line.tokens)}"
            )

        operations = []
        for step in range(1, machine_count + 1):
            machine = line.take_int(f"the machine of step {step}", 0, machine_count - 1)
            duration = line.take_int(f"the duration of step {step}", minimum=1)
            operations.append(Operation((OperationOption(machines[machine], duration),)))
        jobs.append(line.build(Job, f"J{job_number}", tuple(operations)))

    _expect_end_of_file(lines, path, f"{job_count} job lines")
    return Plan(machines=machines, jobs=tuple(jobs), name=path.stem)


def read_plan_json(path: str | os.PathLike[str]) -> Plan:
    """Read a plan in the JSON plan format described in this module's docstring.

    Raises:
        PlanFileError: the file is not valid JSON (naming the line), does not follow the
            format (naming the JSON path of each bad value), or describes an impossible
            plan (with the reasons).
        OSError: the file cannot be opened.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise PlanFileError(path, error.lineno, f"invalid JSON: {error.msg}") from error

    try:
        document = _PlanDocument.model_validate(raw)
    except ValidationError as error:
        raise PlanFileError(path, None, _describe_validation_error(error)) from error

    try:
        return document.to_plan()
    except PlanError as error:
        raise PlanFileError(path, None, str(error)) from error


def write_plan_json(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write `plan` in the JSON plan format, replacing the file atomically."""
    path = Path(path)
    document = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "name": plan.name,
        **_crews_document(plan),
        "machines": list(plan.machines),
        "jobs": [
            {
                "id": job.id,
                "release": job.release,
                "due": job.due,
                "weight": job.weight,
                "operations": [
                    {
                        "options": [
                            {"machine": option.machine, "duration": option.duration}
                            for option in operation.options
                        ]
                    }
                    for operation in job.operations
                ],
            }
            for job in plan.jobs
        ],
        "maintenance": [
            {
                "machine": entry.machine,
                "deadline": entry.deadline,
                "duration": entry.duration,
                "cost": entry.cost,
                "reason": entry.reason,
                "action": entry.action,
                "skill": entry.skill,
                "crew_size": entry.crew_size,
            }
            for entry in plan.maintenance
        ],
        "downtime": [
            {
                "machine": interval.machine,
                "start": interval.start,
                "end": interval.end,
                "reason": interval.reason,
            }
            for interval in plan.downtime
        ],
        "fixed": [_assignment_document(assignment) for assignment in plan.fixed],
        "reference": [_assignment_document(assignment) for assignment in plan.reference],
        "reference_windows": [
            {"machine": window.machine, "start": window.start} for window in plan.reference_windows
        ],
    }

    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=2)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _crews_document(plan: Plan) -> dict[str, Any]:
    if not plan.crews:
        return {"crew_size": plan.crew_size}
    return {"crews": [{"skill": crew.skill, "size": crew.size} for crew in plan.crews]}


def _assignment_document(assignment: OperationAssignment) -> dict[str, Any]:
    return {
        "job": assignment.job,
        "operation": assignment.operation,
        "machine": assignment.machine,
        "start": assignment.start,
    }


class _Line:
    """The numbers on one line of a text plan file, consumed left to right."""

    def __init__(self, path: Path, number: int, text: str) -> None:
        self.path = path
        self.number = number
        self.text = text
        self.tokens = text.split()
        self._position = 0

    def fail(self, message: str) -> NoReturn:
        raise PlanFileError(self.path, self.number, message)

    def take_int(
        self, description: str, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        if self._position >= len(self.tokens):
            self.fail(f"expected {description}, found the end of the line")
        token = self.tokens[self._position]
        self._position += 1

        try:
            value = int(token)
        except ValueError:
            self.fail(f"expected {description} as an integer, found {token!r}")

        below = minimum is not None and value < minimum
        above = maximum is not None and value > maximum
        if below or above:
            allowed = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            self.fail(f"expected {description} {allowed}, found {value}")
        return value

    def expect_end(self, after: str) -> None:
        if self._position < len(self.tokens):
            extra = " ".join(self.tokens[self._position :])
            self.fail(f"expected the end of the line after {after}, found {extra!r}")

    def build(self, kind: Any, *arguments: Any) -> Any:
        """Construct a plan object, turning its `PlanError` into an error on this line."""
        try:
            return kind(*arguments)
        except PlanError as error:
            self.fail("; ".join(error.problems))


def _content_lines(text: str, comment_prefix: str | None) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text) of each line that is not blank or a comment."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        is_comment = comment_prefix is not None and stripped.startswith(comment_prefix)
        if not stripped or is_comment:
            continue
        yield number, stripped


def _next_line(lines: Iterator[tuple[int, str]], path: Path, expected: str) -> _Line:
    entry = next(lines, None)
    if entry is None:
        raise PlanFileError(path, None, f"expected {expected}, found the end of the file")
    return _Line(path, *entry)


def _expect_end_of_file(lines: Iterator[tuple[int, str]], path: Path, after: str) -> None:
    entry = next(lines, None)
    if entry is not None:
        number, text = entry
        raise PlanFileError(
            path, number, f"expected the end of the file after {after}, found {text!r}"
        )


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _OptionDocument(_Document):
    machine: str
    duration: int


class _OperationDocument(_Document):
    options: list[_OptionDocument]


class _JobDocument(_Document):
    id: str
    operations: list[_OperationDocument]
    release: int = 0
    due: int | None = None
    weight: float = 1.0


class _MaintenanceDocument(_Document):
    machine: str
    deadline: int | None
    duration: int
    cost: float
    reason: str = ""
    action: str = ""
    skill: str = DEFAULT_SKILL
    crew_size: int = 1


class _CrewDocument(_Document):
    skill: str
    size: int


class _DowntimeDocument(_Document):
    machine: str
    start: int
    end: int | None
    reason: str = ""


class _AssignmentDocument(_Document):
    job: str
    operation: int
    machine: str
    start: int


class _WindowAssignmentDocument(_Document):
    machine: str
    start: int


class _PlanDocument(_Document):
    format: Literal["plantpulse-plan"]
    version: Literal[1]
    name: str = ""
    crew_size: int | None = None
    crews: list[_CrewDocument] = []
    machines: list[str]
    jobs: list[_JobDocument]
    maintenance: list[_MaintenanceDocument] = []
    downtime: list[_DowntimeDocument] = []
    fixed: list[_AssignmentDocument] = []
    reference: list[_AssignmentDocument] = []
    reference_windows: list[_WindowAssignmentDocument] = []

    def to_plan(self) -> Plan:
        jobs = []
        problems: list[str] = []
        for index, job in enumerate(self.jobs):
            try:
                jobs.append(
                    Job(
                        id=job.id,
                        operations=tuple(
                            Operation(
                                tuple(
                                    OperationOption(option.machine, option.duration)
                                    for option in operation.options
                                )
                            )
                            for operation in job.operations
                        ),
                        release=job.release,
                        due=job.due,
                        weight=job.weight,
                    )
                )
            except PlanError as error:
                problems.extend(f"jobs[{index}]: {problem}" for problem in error.problems)

        maintenance = []
        for index, entry in enumerate(self.maintenance):
            try:
                maintenance.append(
                    MachineMaintenance(
                        machine=entry.machine,
                        deadline=entry.deadline,
                        duration=entry.duration,
                        cost=entry.cost,
                        reason=entry.reason,
                        skill=entry.skill,
                        crew_size=entry.crew_size,
                        action=entry.action,
                    )
                )
            except PlanError as error:
                problems.extend(f"maintenance[{index}]: {problem}" for problem in error.problems)

        downtime = []
        for index, interval in enumerate(self.downtime):
            try:
                downtime.append(
                    MachineDowntime(interval.machine, interval.start, interval.end, interval.reason)
                )
            except PlanError as error:
                problems.extend(f"downtime[{index}]: {problem}" for problem in error.problems)

        crews = []
        for index, crew in enumerate(self.crews):
            try:
                crews.append(Crew(crew.skill, crew.size))
            except PlanError as error:
                problems.extend(f"crews[{index}]: {problem}" for problem in error.problems)
        if self.crews and self.crew_size is not None:
            problems.append(
                f"crew_size {self.crew_size} is given together with crews; list those people "
                f"as a crew of skill {DEFAULT_SKILL!r} instead"
            )

        if problems:
            raise PlanError(problems)

        return Plan(
            machines=tuple(self.machines),
            jobs=tuple(jobs),
            maintenance=tuple(maintenance),
            crew_size=1 if self.crew_size is None else self.crew_size,
            crews=tuple(crews),
            name=self.name,
            downtime=tuple(downtime),
            fixed=tuple(_to_assignment(item) for item in self.fixed),
            reference=tuple(_to_assignment(item) for item in self.reference),
            reference_windows=tuple(
                WindowAssignment(item.machine, item.start) for item in self.reference_windows
            ),
        )


def _to_assignment(document: _AssignmentDocument) -> OperationAssignment:
    return OperationAssignment(document.job, document.operation, document.machine, document.start)


def _describe_validation_error(error: ValidationError) -> str:
    """Return one 'json.path: problem' phrase per invalid value, joined by '; '."""
    phrases = []
    for detail in error.errors():
        path = ""
        for part in detail["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        phrases.append(f"{path.lstrip('.') or 'document'}: {detail['msg']}")
    return "; ".join(phrases)
