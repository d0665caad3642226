"""A Gantt chart of a schedule as a PNG file: one row per machine, one bar per operation.

Operations are coloured by job. Maintenance windows are hatched red bars labelled with
their reason, downtime is hatched grey, and fixed operations have a black outline.
The chart uses matplotlib's object interface and never touches pyplot's global state,
so it is safe to call from a service.
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from scheduler.plan import Plan
from scheduler.schedule import Schedule

# Jobs beyond this many share colours and are left out of the legend.
MAX_JOBS_IN_LEGEND = 20
MAINTENANCE_COLOUR = "#d62728"
DOWNTIME_COLOUR = "#7f7f7f"
BAR_HEIGHT = 0.6


def write_gantt_png(
    plan: Plan,
    schedule: Schedule,
    path: str | os.PathLike[str],
    time_unit: str = "time units",
    title: str | None = None,
) -> Path:
    """Draw `schedule` of `plan` as a Gantt chart and save it as a PNG at `path`.

    `time_unit` names the unit of the plan's times on the x axis, such as "hours".
    The default title names the plan, the solver status, the makespan, the gap and the
    number of maintenance windows.
    Return the path written.
    """
    path = Path(path)
    machines = list(plan.machines)
    rows = {machine: index for index, machine in enumerate(machines)}

    width = 12.0
    height = 2.2 + 0.45 * len(machines)
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()

    job_colours = _job_colours(plan)
    _draw_downtime(axes, plan, rows, schedule)
    _draw_operations(axes, plan, schedule, rows, job_colours)
    _draw_windows(axes, schedule, rows)

    axes.set_yticks(range(len(machines)), machines)
    axes.set_ylim(len(machines) - 0.5, -0.5)
    axes.set_ylabel("machine")
    axes.set_xlabel(f"time ({time_unit} from the plan's start)")
    axes.set_xlim(0, max(_latest_end(schedule), 1) * 1.02)
    axes.grid(axis="x", linestyle=":", linewidth=0.6)
    axes.set_axisbelow(True)
    figure.suptitle(title or _default_title(plan, schedule, time_unit))

    legend = _legend_handles(plan, schedule, job_colours)
    if legend:
        axes.legend(
            handles=legend,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize="small",
            title="legend",
        )

    figure.savefig(path, dpi=120)
    return path


def _job_colours(plan: Plan) -> dict[str, tuple[float, float, float, float]]:
    palette = colormaps["tab20"]
    return {job.id: palette(index % palette.N) for index, job in enumerate(plan.jobs)}


def _draw_operations(
    axes: Axes,
    plan: Plan,
    schedule: Schedule,
    rows: dict[str, int],
    job_colours: dict[str, tuple[float, float, float, float]],
) -> None:
    fixed = {(item.job, item.operation) for item in plan.fixed}
    label_jobs = len(plan.jobs) <= MAX_JOBS_IN_LEGEND

    for item in schedule.operations:
        is_fixed = (item.job, item.operation) in fixed
        axes.barh(
            rows[item.machine],
            item.end - item.start,
            left=item.start,
            height=BAR_HEIGHT,
            color=job_colours.get(item.job, "#1f77b4"),
            edgecolor="black" if is_fixed else "white",
            linewidth=1.6 if is_fixed else 0.5,
        )
        if label_jobs:
            axes.text(
                (item.start + item.end) / 2,
                rows[item.machine],
                f"{item.job}/{item.operation}",
                ha="center",
                va="center",
                fontsize=6,
                clip_on=True,
            )


def _draw_windows(axes: Axes, schedule: Schedule, rows: dict[str, int]) -> None:
    for window in schedule.maintenance:
        row = rows[window.machine]
        axes.barh(
            row,
            window.end - window.start,
            left=window.start,
            height=BAR_HEIGHT,
            color="white",
            edgecolor=MAINTENANCE_COLOUR,
            hatch="///",
            linewidth=1.2,
        )
        axes.annotate(
            window.reason or "maintenance",
            xy=(window.start, row - BAR_HEIGHT / 2),
            xytext=(0, 2),
            textcoords="offset points",
            fontsize=7,
            color=MAINTENANCE_COLOUR,
            va="bottom",
        )


def _draw_downtime(axes: Axes, plan: Plan, rows: dict[str, int], schedule: Schedule) -> None:
    chart_end = max(_latest_end(schedule), 1) * 1.02
    for interval in plan.downtime:
        start = max(interval.start, 0)
        end = chart_end if interval.end is None else interval.end
        if end <= start:
            continue
        axes.barh(
            rows[interval.machine],
            end - start,
            left=start,
            height=BAR_HEIGHT,
            color="#e0e0e0",
            edgecolor=DOWNTIME_COLOUR,
            hatch="xx",
            linewidth=0.8,
        )


def _legend_handles(
    plan: Plan, schedule: Schedule, job_colours: dict[str, tuple[float, float, float, float]]
) -> list[Patch]:
    handles = []
    if len(plan.jobs) <= MAX_JOBS_IN_LEGEND:
        handles += [Patch(color=job_colours[job.id], label=f"job {job.id}") for job in plan.jobs]
    else:
        handles.append(Patch(color="#9edae5", label=f"{len(plan.jobs)} jobs, coloured by job"))

    for window in schedule.maintenance:
        handles.append(
            Patch(
                facecolor="white",
                edgecolor=MAINTENANCE_COLOUR,
                hatch="///",
                label=(
                    f"maintenance {window.machine} {window.start}-{window.end}: "
                    f"{window.reason or 'no reason given'}"
                ),
            )
        )
    if plan.downtime:
        handles.append(
            Patch(facecolor="#e0e0e0", edgecolor=DOWNTIME_COLOUR, hatch="xx", label="machine down")
        )
    if plan.fixed:
        handles.append(
            Patch(facecolor="white", edgecolor="black", linewidth=1.6, label="fixed operation")
        )
    return handles


def _latest_end(schedule: Schedule) -> int:
    ends = [item.end for item in schedule.operations] + [w.end for w in schedule.maintenance]
    return max(ends, default=0)


def _default_title(plan: Plan, schedule: Schedule, time_unit: str) -> str:
    gap = "n/a" if schedule.gap is None else f"{schedule.gap:.2%}"
    name = plan.name or "plan"
    return (
        f"{name}\n{schedule.status} schedule, makespan {schedule.makespan} {time_unit}, "
        f"gap {gap}, {schedule.maintenance_count} maintenance windows"
    )
