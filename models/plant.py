"""Plant description: the one typed file that describes what a plant is made of.

A description names the plant's machines, its sensor channels and the component each one
observes. It lists the components' failure modes with the maintenance actions that fix
them, the maintenance crews per skill, and the production-context fields, marking which
of them are personal data. Optionally it says where a training dataset lies and how its
columns map onto all this.
Loaders, the predictor, the scheduler and the dashboard read it instead of hard-coding
columns, so a new plant needs a new file rather than new code.

Files are TOML or YAML. ``load_plant`` validates them with pydantic and raises
``PlantDescriptionError`` whose message names the file, the path inside it and the field.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Name = str


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChannelSpec(_Spec):
    """A sensor channel: what it measures, in which unit, its valid range and its component."""

    name: Name = Field(min_length=1)
    description: str = ""
    unit: str = ""
    valid_min: float | None = None
    valid_max: float | None = None
    component: Name | None = Field(
        default=None, description="the component this channel observes; None for ambient inputs"
    )
    column: str | None = Field(default=None, description="dataset column; defaults to the name")

    @model_validator(mode="after")
    def _range_is_ordered(self) -> ChannelSpec:
        if (
            self.valid_min is not None
            and self.valid_max is not None
            and self.valid_min > self.valid_max
        ):
            raise ValueError(f"valid_min {self.valid_min} is above valid_max {self.valid_max}")
        return self

    @property
    def source_column(self) -> str:
        return self.column or self.name

    def in_range(self, value: float) -> bool:
        """Return whether ``value`` lies inside the channel's valid range (bounds included)."""
        if self.valid_min is not None and value < self.valid_min:
            return False
        return not (self.valid_max is not None and value > self.valid_max)


class ContextFieldSpec(_Spec):
    """A production-context field: categorical (with its categories) or numeric."""

    name: Name = Field(min_length=1)
    description: str = ""
    kind: Literal["categorical", "numeric", "text"] = "numeric"
    categories: tuple[str, ...] = ()
    personal: bool = Field(
        default=False, description="personal data: pseudonymised at ingest, never stored in clear"
    )
    column: str | None = None

    @model_validator(mode="after")
    def _categories_fit_kind(self) -> ContextFieldSpec:
        if self.kind == "categorical" and not self.categories:
            raise ValueError("a categorical field needs its categories")
        if self.kind != "categorical" and self.categories:
            raise ValueError(f"a {self.kind} field takes no categories")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"categories repeat: {list(self.categories)}")
        return self

    @property
    def source_column(self) -> str:
        return self.column or self.name


class MaintenanceActionSpec(_Spec):
    """A maintenance action: how long it takes a machine, what it costs, who does it."""

    name: Name = Field(min_length=1)
    description: str = ""
    duration_minutes: int = Field(gt=0)
    cost: float = Field(default=0.0, ge=0)
    skill: Name = Field(min_length=1, description="the crew skill the action needs")
    crew_size: int = Field(default=1, ge=1, description="crew members busy for the whole action")
    spare_parts: tuple[str, ...] = ()


class FailureModeSpec(_Spec):
    """A way a component fails, the channels that show it, and the actions that fix it.

    ``indicators`` maps channel names to a weight in (0, 1]: how strongly that channel's
    movement points at this failure mode rather than at another of the same component.
    ``actions`` lists action names, the recommended one first. ``label_column`` names the
    dataset column that flags this mode, where the data has one.
    """

    name: Name = Field(min_length=1)
    description: str = ""
    indicators: dict[Name, float] = Field(default_factory=dict)
    actions: tuple[Name, ...] = Field(min_length=1)
    label_column: str | None = None

    @model_validator(mode="after")
    def _weights_in_range(self) -> FailureModeSpec:
        for channel, weight in self.indicators.items():
            if not 0.0 < weight <= 1.0:
                raise ValueError(f"indicator weight of {channel!r} must be in (0, 1], got {weight}")
        return self


class ComponentSpec(_Spec):
    name: Name = Field(min_length=1)
    description: str = ""
    failure_modes: tuple[FailureModeSpec, ...] = ()


class CrewSpec(_Spec):
    """How many people with one skill can work on maintenance at the same time."""

    skill: Name = Field(min_length=1)
    size: int = Field(ge=1)


class MachineSpec(_Spec):
    """One machine, or a numbered group of machines that share type and speed.

    Give either ``id`` or ``id_pattern`` with ``count``: the pattern is a Python format
    string for an integer, e.g. ``"engine-{:03d}"`` with ``first = 1`` and ``count = 100``.
    """

    id: Name | None = None
    id_pattern: str | None = None
    first: int = 1
    count: int | None = Field(default=None, ge=1)
    type: Name = Field(min_length=1)
    cycles_per_hour: float = Field(gt=0)
    operations: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _one_naming(self) -> MachineSpec:
        if (self.id is None) == (self.id_pattern is None):
            raise ValueError("give exactly one of id or id_pattern")
        if self.id_pattern is not None:
            if self.count is None:
                raise ValueError("id_pattern needs count")
            try:
                self.id_pattern.format(self.first)
            except (IndexError, KeyError, ValueError) as error:
                raise ValueError(
                    f"id_pattern {self.id_pattern!r} does not format an integer: {error}"
                ) from None
        elif self.count is not None:
            raise ValueError("count goes with id_pattern, not with id")
        return self

    def machine_ids(self) -> list[str]:
        if self.id is not None:
            return [self.id]
        assert self.id_pattern is not None and self.count is not None
        return [self.id_pattern.format(self.first + n) for n in range(self.count)]


class DatasetSpec(_Spec):
    """Location of a training dataset, and how its rows become windows and labels.

    ``format`` picks the parser: ``cmapss`` for the NASA text files, ``csv`` for a table
    with a header. For ``csv``, rows are grouped by ``machine_column`` (or all belong to
    ``machine_id``) and ordered by ``order_column``. Channel and context columns come from
    the plant's channels and context fields, and ``failure_column`` flags a failure of any mode.
    """

    format: Literal["cmapss", "csv"]
    path: str = Field(min_length=1, description="relative to the data folder")
    machine_column: str | None = None
    machine_id: Name | None = None
    order_column: str | None = None
    failure_column: str | None = None
    window: int | None = Field(
        default=None,
        ge=1,
        description="consecutive operations per model window for a csv dataset; "
        "the trainer's default when unset",
    )

    @model_validator(mode="after")
    def _machine_source(self) -> DatasetSpec:
        if self.format == "csv" and (self.machine_column is None) == (self.machine_id is None):
            raise ValueError("a csv dataset needs exactly one of machine_column or machine_id")
        return self


class Diagnosable(_Spec):
    """Shared lookups over components, failure modes and actions."""

    components: tuple[ComponentSpec, ...] = ()
    actions: tuple[MaintenanceActionSpec, ...] = ()

    def failure_modes(self) -> list[tuple[ComponentSpec, FailureModeSpec]]:
        return [
            (component, mode) for component in self.components for mode in component.failure_modes
        ]

    def action(self, name: str) -> MaintenanceActionSpec:
        for action in self.actions:
            if action.name == name:
                return action
        raise KeyError(f"no maintenance action named {name!r}")


class PlantDescription(Diagnosable):
    """The whole description of one plant; see the module docstring."""

    plant_id: Name = Field(min_length=1)
    name: str = ""
    description: str = ""
    machines: tuple[MachineSpec, ...] = Field(min_length=1)
    channels: tuple[ChannelSpec, ...] = Field(min_length=1)
    context: tuple[ContextFieldSpec, ...] = ()
    crews: tuple[CrewSpec, ...] = ()
    dataset: DatasetSpec | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> PlantDescription:
        problems: list[str] = []
        problems += _repeats("channel", (c.name for c in self.channels))
        problems += _repeats("context field", (f.name for f in self.context))
        problems += _repeats("component", (c.name for c in self.components))
        problems += _repeats("action", (a.name for a in self.actions))
        problems += _repeats("crew skill", (c.skill for c in self.crews))
        problems += _repeats("failure mode", (m.name for _, m in self.failure_modes()))
        problems += _repeats("machine id", (i for m in self.machines for i in m.machine_ids()))

        components = {c.name for c in self.components}
        channels = {c.name for c in self.channels}
        actions = {a.name for a in self.actions}
        skills = {c.skill for c in self.crews}
        for channel in self.channels:
            if channel.component is not None and channel.component not in components:
                problems.append(
                    f"channel {channel.name!r} observes component {channel.component!r}, "
                    f"which is not one of {sorted(components)}"
                )
        for component, mode in self.failure_modes():
            where = f"failure mode {mode.name!r} of component {component.name!r}"
            for indicator in mode.indicators:
                if indicator not in channels:
                    problems.append(
                        f"{where} names indicator channel {indicator!r}, which is not a channel"
                    )
            for action_name in mode.actions:
                if action_name not in actions:
                    problems.append(
                        f"{where} names action {action_name!r}, which is not one of {sorted(actions)}"
                    )
        for action in self.actions:
            crew = next((c for c in self.crews if c.skill == action.skill), None)
            if crew is None:
                problems.append(
                    f"action {action.name!r} needs skill {action.skill!r}, but no crew has it "
                    f"(crews: {sorted(skills)})"
                )
            elif action.crew_size > crew.size:
                problems.append(
                    f"action {action.name!r} needs {action.crew_size} people with skill "
                    f"{action.skill!r}, but that crew has {crew.size}"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # --- lookups -----------------------------------------------------------------------

    def machine_ids(self) -> list[str]:
        return [machine_id for spec in self.machines for machine_id in spec.machine_ids()]

    def machine(self, machine_id: str) -> MachineSpec:
        for spec in self.machines:
            if machine_id in spec.machine_ids():
                return spec
        raise KeyError(f"plant {self.plant_id!r} has no machine {machine_id!r}")

    def channel(self, name: str) -> ChannelSpec:
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(f"plant {self.plant_id!r} has no channel {name!r}")

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(channel.name for channel in self.channels)

    @property
    def personal_fields(self) -> frozenset[str]:
        return frozenset(field.name for field in self.context if field.personal)

    def crew_sizes(self) -> dict[str, int]:
        return {crew.skill: crew.size for crew in self.crews}


class PlantDescriptionError(ValueError):
    """A plant description file that cannot be read or does not validate."""


def load_plant(path: Path | str) -> PlantDescription:
    """Read and validate a plant description from a ``.toml``, ``.yaml`` or ``.yml`` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PlantDescriptionError(f"cannot read plant description {path}: {error}") from None
    return parse_plant(text, suffix=path.suffix, source=str(path))


def parse_plant(text: str, suffix: str, source: str = "<text>") -> PlantDescription:
    """Validate a plant description given as TOML or YAML text; ``suffix`` picks the format."""
    data = _parse_document(text, suffix.lower(), source)
    try:
        return PlantDescription.model_validate(data)
    except ValidationError as error:
        raise PlantDescriptionError(_describe_errors(source, data, error)) from None


def example_plant(name: Literal["cmapss", "ai4i"]) -> PlantDescription:
    """Return one of the shipped example descriptions: ``cmapss`` or ``ai4i``."""
    filename = {"cmapss": "cmapss-fd001.toml", "ai4i": "ai4i2020.toml"}[name]
    text = resources.files("models").joinpath("plants", filename).read_text(encoding="utf-8")
    return parse_plant(text, suffix=".toml", source=f"models/plants/{filename}")


def _parse_document(text: str, suffix: str, source: str) -> dict[str, Any]:
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise PlantDescriptionError(
                f"{source}: unknown plant description format {suffix!r}; use .toml, .yaml or .yml"
            )
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        detail = str(error).replace('"<unicode string>"', source)  # PyYAML's name for text
        raise PlantDescriptionError(
            f"{source}: not valid {suffix.lstrip('.').upper()}: {detail}"
        ) from None
    if not isinstance(data, dict):
        raise PlantDescriptionError(f"{source}: the top level must be a table of fields")
    return data


def _describe_errors(source: str, data: dict[str, Any], error: ValidationError) -> str:
    count = error.error_count()
    lines = [f"{source}: invalid plant description ({count} problem{'s' if count != 1 else ''})"]
    for problem in error.errors(include_url=False):
        # Our own validators' messages are complete sentences; pydantic prefixes them.
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {_location(data, problem['loc'])}: {message}")
    return "\n".join(lines)


def _location(data: Any, loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as ``channels[3] (s4).valid_max``."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            parts.append(f"[{key}]")
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name") or node.get("id"), str):
                parts.append(f" ({node.get('name') or node.get('id')})")
        else:
            parts.append(f".{key}" if parts else key)
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def _repeats(kind: str, names: Iterable[str]) -> list[str]:
    return [
        f"{kind} {name!r} appears {count} times"
        for name, count in Counter(names).items()
        if count > 1
    ]
