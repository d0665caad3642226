"""`plantpulse explain`: a machine's latest state, traced from channels to a maintenance action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.events import MachineState
from ingest.history import MACHINE_STATE, HistoryReadError, HistoryStore, machine_state_from_point
from models.knowledge import ChannelEvidence, Diagnosis
from models.plant import PlantDescription

# The predictor dead-letters readings stamped more than 24 h ahead of its clock, so no
# stored state is later than that, unless the two clocks disagree by more.
LATEST_STATE_SKEW = timedelta(hours=24)
LISTED_CHANNELS = 10


def latest_machine_state(history: HistoryStore, machine_id: str) -> MachineState | None:
    """Return the newest stored state of ``machine_id``, or None when there is none.

    Raises HistoryReadError when the store fails or the stored point is incomplete.
    """
    before = datetime.now(UTC) + LATEST_STATE_SKEW
    points = history.last(MACHINE_STATE, {"machine_id": machine_id}, 1, before)
    if not points:
        return None
    try:
        return machine_state_from_point(points[-1])
    except (KeyError, ValueError) as error:
        raise HistoryReadError(
            f"the stored state of {machine_id} at {points[-1].time.isoformat()} is "
            f"incomplete: {error}"
        ) from error


def missing_state_message(machine_id: str, plant: PlantDescription, history_name: str) -> str:
    """Explain why no state was found: an unknown machine, or one without a prediction yet."""
    if machine_id in plant.machine_ids():
        return (
            f"no machine state of {machine_id} in {history_name} yet. The predictor writes one "
            "per window once a machine has as many readings as the model's window; "
            "is --history the folder that the predictor or the demo wrote?"
        )
    known = plant.machine_ids()
    examples = ", ".join(known[:3]) + (f" ... {known[-1]}" if len(known) > 3 else "")
    return (
        f"unknown machine {machine_id!r}: no machine state of it in {history_name}, and plant "
        f"description {plant.plant_id} has no such machine (it has {examples})"
    )


def format_explanation(
    state: MachineState, diagnosis: Diagnosis, plant: PlantDescription, plant_source: str
) -> str:
    """Render the chain channels -> components -> failure modes -> action as plain text."""
    lines = _header(state, plant, plant_source)

    if not state.channel_scores:
        lines.append(
            "This state carries no channel shares, because an older predictor wrote it. "
            f"Top channels: {', '.join(state.top_channels) or 'none'}."
        )
        lines += _stored_causes(state)
        return "\n".join(lines)

    lines += _channel_lines(state, diagnosis, plant)
    if not diagnosis.failure_modes:
        lines += [
            "",
            f"No channel of this state observes a component of plant description "
            f"{plant.plant_id}, so there is no likely cause. Pass the plant description that "
            "the predictor used with --plant.",
        ]
        return "\n".join(lines)

    lines += _component_lines(diagnosis, plant)
    lines += _failure_mode_lines(diagnosis)
    lines += _action_lines(diagnosis)
    lines += _stored_cause_check(state, diagnosis)
    return "\n".join(lines)


def _header(state: MachineState, plant: PlantDescription, plant_source: str) -> list[str]:
    probabilities = ", ".join(
        f"P({name}) {probability:.1%}" for name, probability in state.state_probabilities.items()
    )
    rul = state.rul
    title = f" ({plant.name})" if plant.name else ""
    return [
        f"{state.machine_id} at {state.ts:%Y-%m-%d %H:%M} UTC (reading {state.seq}), "
        f"model {state.model_version}",
        f"state {state.state}: {probabilities}",
        f"RUL p10 / p50 / p90: {rul.p10:.1f} / {rul.p50:.1f} / {rul.p90:.1f} cycles",
        f"plant {plant.plant_id}{title}, described in {plant_source}",
    ]


def _channel_lines(state: MachineState, diagnosis: Diagnosis, plant: PlantDescription) -> list[str]:
    lines = [
        "",
        "1. Channels: share of the attribution on RUL p50, over the channels that observe "
        "a component",
    ]
    shares = list(diagnosis.channel_shares.items())
    for channel, share in shares[:LISTED_CHANNELS]:
        spec = plant.channel(channel)
        lines.append(
            f"   {channel:<10} {share:6.1%}  {spec.component or '':<12} {spec.description}".rstrip()
        )
    if len(shares) > LISTED_CHANNELS:
        rest = shares[LISTED_CHANNELS:]
        lines.append(
            f"   ... {len(rest)} more channels with {sum(share for _, share in rest):.1%} together"
        )
    if diagnosis.ignored_channels:
        lines.append(
            "   not evidence (no component in the plant description): "
            + ", ".join(diagnosis.ignored_channels)
        )
    return lines


def _component_lines(diagnosis: Diagnosis, plant: PlantDescription) -> list[str]:
    descriptions = {component.name: component.description for component in plant.components}
    lines = ["", "2. Components: sum of the shares of their channels"]
    for rank, component in enumerate(diagnosis.components, start=1):
        lines.append(
            f"   {rank}. {component.component:<12} {component.score:6.1%}  "
            f"{descriptions.get(component.component, '')}".rstrip()
        )
        lines.append(f"      from {_shares(component.evidence)}")
    return lines


def _failure_mode_lines(diagnosis: Diagnosis) -> list[str]:
    lines = [
        "",
        "3. Failure modes: sum of share x indicator weight, normalised over the modes",
    ]
    for rank, mode in enumerate(diagnosis.failure_modes, start=1):
        lines.append(
            f"   {rank}. {mode.failure_mode} ({mode.component})  {mode.score:.1%}  "
            f"(raw {mode.raw_score:.3f})"
        )
        lines.append(f"      from {_weighted_shares(mode.evidence)}")
    if diagnosis.tied_modes:
        lines.append(
            f"   tied with {', '.join(diagnosis.tied_modes)}: the order of the plant "
            "description puts the first one ahead"
        )
    return lines


def _action_lines(diagnosis: Diagnosis) -> list[str]:
    mode = diagnosis.top_failure_mode
    action = diagnosis.recommended_action
    assert mode is not None and action is not None
    crew = f"{action.crew_size} x {action.skill}"
    parts = ", ".join(action.spare_parts) or "none"
    lines = [
        "",
        f"4. Recommended action: {action.name}, the first action for {mode.failure_mode}",
    ]
    if action.description:
        lines.append(f"   {action.description}")
    lines.append(
        f"   {action.duration_minutes} min ({action.duration_minutes / 60:.1f} h), {crew}, "
        f"cost {action.cost:g}, spare parts: {parts}"
    )
    if len(mode.actions) > 1:
        lines.append(f"   other actions for {mode.failure_mode}: {', '.join(mode.actions[1:])}")
    return lines


def _stored_cause_check(state: MachineState, diagnosis: Diagnosis) -> list[str]:
    stored = [cause.failure_mode for cause in state.likely_causes]
    recomputed = [mode.failure_mode for mode in diagnosis.failure_modes[: len(stored)]]
    if not stored or stored == recomputed:
        return []
    return [
        "",
        f"Note: the predictor stored the likely causes {', '.join(stored)}; this plant "
        f"description ranks {', '.join(recomputed)}. The description changed since, or "
        "the predictor used another one.",
    ]


def _stored_causes(state: MachineState) -> list[str]:
    lines = []
    for rank, cause in enumerate(state.likely_causes, start=1):
        lines.append(
            f"   {rank}. {cause.failure_mode} ({cause.component})  {cause.score:.1%}  "
            f"from {', '.join(cause.evidence)}"
        )
    if state.recommended_action is not None:
        lines.append(f"Recommended action: {state.recommended_action.name}")
    return lines


def _shares(evidence: tuple[ChannelEvidence, ...]) -> str:
    return ", ".join(f"{item.channel} {item.share:.1%}" for item in evidence)


def _weighted_shares(evidence: tuple[ChannelEvidence, ...]) -> str:
    return ", ".join(f"{item.channel} {item.share:.1%} x {item.weight:g}" for item in evidence)
