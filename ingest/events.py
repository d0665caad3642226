"""Event contracts: every message on a PlantPulse topic is one of these pydantic models.

All events are JSON on the wire and carry `schema_version`. Times are timezone-aware and
normalised to UTC; a naive timestamp is rejected because its zone cannot be known.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1

Identifier = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
ContextValue = FiniteFloat | int | str | bool


class Event(BaseModel):
    """Base of every event: frozen, strict about unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


# --- plantpulse.sensors -------------------------------------------------------------


class SensorReading(Event):
    """One reading of one machine: sensor channels plus the production context it ran in.

    The plant description's personal context fields are pseudonymised when the reading
    is consumed.
    """

    machine_id: Identifier
    ts: UtcDatetime
    seq: int = Field(ge=0, description="per-machine sequence number, increasing")
    channels: dict[str, FiniteFloat] = Field(min_length=1)
    context: dict[str, ContextValue] = Field(default_factory=dict)


# --- plantpulse.plan ------------------------------------------------------------------


class MachineOption(BaseModel):
    """One machine an operation may run on, with its duration there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    machine_id: Identifier
    duration_minutes: int = Field(gt=0)


class OperationSpec(BaseModel):
    """One operation of a job: the machines that can run it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    options: list[MachineOption] = Field(min_length=1)

    @field_validator("options")
    @classmethod
    def _machines_unique(cls, options: list[MachineOption]) -> list[MachineOption]:
        machines = [option.machine_id for option in options]
        if len(set(machines)) != len(machines):
            raise ValueError(f"a machine is listed twice among the options: {machines}")
        return options


PLAN_CONTEXT_DESCRIPTION = (
    "production context, such as the badge of the person who acted; the plant "
    "description's personal fields are pseudonymised when the event is consumed"
)


class JobReleased(Event):
    """A job enters the open plan: ordered operations, release, due date and weight."""

    type: Literal["job_released"] = "job_released"
    job_id: Identifier
    ts: UtcDatetime
    operations: list[OperationSpec] = Field(min_length=1)
    release: UtcDatetime
    due: UtcDatetime | None = None
    weight: FiniteFloat = Field(default=1.0, ge=0.0)
    context: dict[str, ContextValue] = Field(
        default_factory=dict, description=PLAN_CONTEXT_DESCRIPTION
    )

    @model_validator(mode="after")
    def _due_after_release(self) -> JobReleased:
        if self.due is not None and self.due < self.release:
            raise ValueError(
                f"due {self.due.isoformat()} is before release {self.release.isoformat()}"
            )
        return self


class JobCancelled(Event):
    type: Literal["job_cancelled"] = "job_cancelled"
    job_id: Identifier
    ts: UtcDatetime
    reason: str = ""


class OperationStarted(Event):
    type: Literal["operation_started"] = "operation_started"
    job_id: Identifier
    operation: int = Field(ge=0)
    machine_id: Identifier
    ts: UtcDatetime
    context: dict[str, ContextValue] = Field(
        default_factory=dict, description=PLAN_CONTEXT_DESCRIPTION
    )


class OperationCompleted(Event):
    type: Literal["operation_completed"] = "operation_completed"
    job_id: Identifier
    operation: int = Field(ge=0)
    machine_id: Identifier
    ts: UtcDatetime
    context: dict[str, ContextValue] = Field(
        default_factory=dict, description=PLAN_CONTEXT_DESCRIPTION
    )


PlanEvent = Annotated[
    JobReleased | JobCancelled | OperationStarted | OperationCompleted,
    Field(discriminator="type"),
]


# --- plantpulse.maintenance ----------------------------------------------------------


class MaintenanceDone(Event):
    """Maintenance finished on a machine; its remaining life starts again."""

    type: Literal["maintenance_done"] = "maintenance_done"
    machine_id: Identifier
    ts: UtcDatetime
    kind: str = "preventive"
    component: str | None = None
    duration_minutes: int = Field(ge=0)


class FailureReported(Event):
    """A machine failed: a label for retraining and a machine-down signal."""

    type: Literal["failure_reported"] = "failure_reported"
    machine_id: Identifier
    ts: UtcDatetime
    kind: str
    component: str | None = None
    duration_minutes: int = Field(ge=0)


MaintenanceEvent = Annotated[MaintenanceDone | FailureReported, Field(discriminator="type")]


# --- plantpulse.machine-state --------------------------------------------------------

HealthState = Literal["healthy", "degrading", "critical"]


class RemainingUsefulLife(BaseModel):
    """Remaining useful life in cycles, as the 10th, 50th and 90th percentiles."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    p10: FiniteFloat = Field(ge=0.0)
    p50: FiniteFloat = Field(ge=0.0)
    p90: FiniteFloat = Field(ge=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> RemainingUsefulLife:
        if not self.p10 <= self.p50 <= self.p90:
            raise ValueError(
                f"quantiles out of order: p10={self.p10} p50={self.p50} p90={self.p90}"
            )
        return self


class LikelyCause(BaseModel):
    """A failure mode that the attributed channels point at, with its share of the evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    component: str
    failure_mode: str
    score: FiniteFloat = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(default_factory=list, description="channels behind the score")


class RecommendedAction(BaseModel):
    """The maintenance action the plant description recommends for the most likely cause."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    duration_minutes: int = Field(gt=0)
    skill: str
    crew_size: int = Field(default=1, ge=1)
    cost: FiniteFloat = Field(default=0.0, ge=0.0)
    description: str = ""
    spare_parts: list[str] = Field(default_factory=list)


class MachineState(Event):
    """The fusion model's view of one machine after one reading."""

    machine_id: Identifier
    ts: UtcDatetime
    seq: int = Field(ge=0)
    model_version: str
    state: HealthState
    state_probabilities: dict[HealthState, FiniteFloat]
    rul: RemainingUsefulLife
    top_channels: list[str] = Field(default_factory=list)
    channel_scores: dict[str, Share] = Field(
        default_factory=dict,
        description="each channel's share of the attribution on RUL p50; non-negative, sum 1",
    )
    likely_causes: list[LikelyCause] = Field(default_factory=list)
    recommended_action: RecommendedAction | None = None


# --- plantpulse.schedule ---------------------------------------------------------------


class ScheduledOperationOut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    operation: int
    machine_id: str
    start: UtcDatetime
    end: UtcDatetime


class MaintenanceWindowOut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    machine_id: str
    start: UtcDatetime
    end: UtcDatetime
    reason: str


class ScheduleKpis(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    makespan_minutes: float
    weighted_tardiness_minutes: float
    maintenance_count: int
    maintenance_cost: float


class Schedule(Event):
    """A published, maintenance-aware schedule for one plant."""

    schedule_id: str
    plant_id: Identifier
    created: UtcDatetime
    plan_version: str
    model_versions: list[str] = Field(default_factory=list)
    operations: list[ScheduledOperationOut]
    maintenance_windows: list[MaintenanceWindowOut]
    kpis: ScheduleKpis
    solver_status: Literal["optimal", "feasible", "fallback", "infeasible"]
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    solve_seconds: float
    freeze_until: UtcDatetime | None = Field(
        default=None, description="operations starting before this time were kept in place"
    )


# --- plantpulse.models -------------------------------------------------------------------


class ModelPromoted(Event):
    """A model version became the registry's champion; predictors switch to it on their own."""

    type: Literal["model_promoted"] = "model_promoted"
    version: str
    previous_version: str | None = None
    ts: UtcDatetime
    registry: str = Field(description="registry folder the version lives in")
    metrics: dict[str, FiniteFloat] = Field(default_factory=dict)
    reason: str = ""


# --- plantpulse.dead-letter --------------------------------------------------------------

MAX_DEAD_LETTER_BYTES = 64 * 1024

RawPrivacy = Literal["original", "pseudonymised", "withheld"]


class DeadLetter(Event):
    """A record that could not be processed, with where it came from and why.

    `raw_privacy` records what was done to the raw bytes: "original" (as read),
    "pseudonymised" (personal values replaced, then re-encoded as JSON) or "withheld"
    (empty, because the record was not JSON and may hold personal values anywhere).
    `raw_size` is always the size of the record as read.
    """

    original_topic: str
    partition: int
    offset: int
    key: str | None
    raw_base64: str
    raw_size: int
    raw_truncated: bool
    raw_privacy: RawPrivacy = "original"
    error: str
    ts: UtcDatetime

    @classmethod
    def from_record(
        cls,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        raw: bytes | None,
        error: str,
        max_bytes: int = MAX_DEAD_LETTER_BYTES,
        raw_privacy: RawPrivacy = "original",
        raw_size: int | None = None,
    ) -> DeadLetter:
        """Build a dead letter; `raw_size` defaults to the length of `raw`."""
        raw = raw or b""
        return cls(
            original_topic=topic,
            partition=partition,
            offset=offset,
            key=key.decode("utf-8", errors="replace") if key is not None else None,
            raw_base64=base64.b64encode(raw[:max_bytes]).decode("ascii"),
            raw_size=len(raw) if raw_size is None else raw_size,
            raw_truncated=len(raw) > max_bytes,
            raw_privacy=raw_privacy,
            error=error,
            ts=datetime.now(UTC),
        )

    def raw(self) -> bytes:
        return base64.b64decode(self.raw_base64)


# --- decoding ------------------------------------------------------------------------------

PLAN_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(PlanEvent)
MAINTENANCE_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(MaintenanceEvent)
