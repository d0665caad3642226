"""PlantPulse's CP-SAT scheduler against PyJobShop on JSPLIB and Brandimarte instances.

Both solvers get the same plan (read by `scheduler.read_plan`), the same time limit and
the same number of CP-SAT workers, and minimize the makespan. PyJobShop runs with its
OR-Tools backend, so the comparison is between two CP-SAT models of the same problem.
Each instance is solved by one solver after the other, never both at once.

    python benchmarks/scheduler.py --time-limit 10 --workers 2
    python benchmarks/scheduler.py --time-limit 60 --instances ft06,la01,mk01
    python benchmarks/scheduler.py --time-limit 60 --instances mk05 --solvers plantpulse --seed 3

PyJobShop comes with the `bench` extra: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide
# the `scheduler` package.
sys.path = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).parent]

from scheduler import (  # noqa: E402
    ObjectiveWeights,
    Plan,
    SolverSettings,
    check_schedule,
    read_plan,
    solve,
)

logger = logging.getLogger("benchmarks.scheduler")

JSPLIB_INSTANCES = ["ft06", "ft10", *(f"la{number:02d}" for number in range(1, 21))]
BRANDIMARTE_INSTANCES = ["mk01", "mk02", "mk03", "mk04", "mk05"]

# Optimal makespans of mk01-mk05, proven in the flexible job shop literature and quoted
# by PyJobShop's and other FJSP benchmark tables. JSPLIB's come from its instances.json.
BRANDIMARTE_OPTIMA = {"mk01": 40, "mk02": 26, "mk03": 204, "mk04": 60, "mk05": 172}


@dataclass(frozen=True)
class Run:
    """One solver's result on one instance."""

    instance: str
    solver: str
    makespan: int | None
    bound: float | None
    status: str
    seconds: float
    optimum: int

    @property
    def gap_to_optimum(self) -> float | None:
        if self.makespan is None:
            return None
        return (self.makespan - self.optimum) / self.optimum


def main() -> None:
    arguments = parse_arguments()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    instances = load_instances(arguments.data_dir, arguments.instances)
    solvers = arguments.solvers.split(",")
    runs: list[Run] = []

    for name, (path, optimum) in instances.items():
        plan = read_plan(path)
        for solver in solvers:
            if solver == "plantpulse":
                run = run_plantpulse(plan, name, optimum, arguments)
            elif solver == "pyjobshop":
                run = run_pyjobshop(plan, name, optimum, arguments)
            else:
                raise SystemExit(f"unknown solver {solver!r}; use plantpulse and/or pyjobshop")
            logger.info(
                "%s %s: makespan %s (optimum %d), bound %s, %s, %.1f s",
                name,
                solver,
                run.makespan,
                optimum,
                run.bound,
                run.status,
                run.seconds,
            )
            runs.append(run)

    print(markdown_report(runs, solvers, arguments))
    if arguments.json is not None:
        arguments.json.write_text(json.dumps([asdict(run) for run in runs], indent=2) + "\n")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--time-limit", type=float, default=10.0, help="seconds per instance and solver"
    )
    parser.add_argument("--workers", type=int, default=2, help="CP-SAT search workers")
    parser.add_argument(
        "--seed", type=int, default=0, help="CP-SAT random seed of both solvers (default: 0)"
    )
    parser.add_argument(
        "--instances",
        default=",".join(JSPLIB_INSTANCES + BRANDIMARTE_INSTANCES),
        help="comma-separated instance names (default: ft06, ft10, la01-la20, mk01-mk05)",
    )
    parser.add_argument(
        "--solvers", default="plantpulse,pyjobshop", help="comma-separated: plantpulse,pyjobshop"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(
            os.environ.get(
                "PLANTPULSE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared/data"
            )
        ),
        help="folder with jsplib/ and fjsp/brandimarte/ (default: $PLANTPULSE_DATA_DIR)",
    )
    parser.add_argument("--json", type=Path, help="also write every run to this JSON file")
    return parser.parse_args()


def load_instances(data_dir: Path, names: str) -> dict[str, tuple[Path, int]]:
    """Return the file and optimal makespan of each named instance, in the given order."""
    jsplib_optima = {
        entry["name"]: entry["optimum"]
        for entry in json.loads((data_dir / "jsplib" / "instances.json").read_text())
    }

    instances = {}
    for name in names.split(","):
        if name in BRANDIMARTE_OPTIMA:
            path = data_dir / "fjsp" / "brandimarte" / f"{name}.fjs"
            instances[name] = (path, BRANDIMARTE_OPTIMA[name])
        elif name in jsplib_optima:
            instances[name] = (data_dir / "jsplib" / "instances" / name, jsplib_optima[name])
        else:
            raise SystemExit(
                f"unknown instance {name!r}: not in {data_dir / 'jsplib' / 'instances.json'} "
                f"and not one of {sorted(BRANDIMARTE_OPTIMA)}"
            )
    return instances


def run_plantpulse(plan: Plan, name: str, optimum: int, arguments: argparse.Namespace) -> Run:
    settings = SolverSettings(
        time_limit_s=arguments.time_limit,
        workers=arguments.workers,
        seed=arguments.seed,
        weights=ObjectiveWeights(makespan=1, weighted_tardiness=0, maintenance_cost=0, changes=0),
    )
    started = time.perf_counter()
    schedule = solve(plan, settings)
    seconds = time.perf_counter() - started

    violations = check_schedule(plan, schedule)
    if violations:
        raise RuntimeError(f"{name}: PlantPulse returned an infeasible schedule: {violations[:3]}")
    return Run(
        instance=name,
        solver="plantpulse",
        makespan=schedule.makespan if schedule.operations else None,
        bound=schedule.bound,
        status=schedule.status,
        seconds=seconds,
        optimum=optimum,
    )


def run_pyjobshop(plan: Plan, name: str, optimum: int, arguments: argparse.Namespace) -> Run:
    from pyjobshop import Model

    model = Model()
    machines = {machine: model.add_machine(name=machine) for machine in plan.machines}
    for job in plan.jobs:
        pyjobshop_job = model.add_job(release_date=max(job.release, 0), name=job.id)
        previous = None
        for index, operation in enumerate(job.operations):
            task = model.add_task(job=pyjobshop_job, name=f"{job.id}/{index}")
            for option in operation.options:
                model.add_mode(task, machines[option.machine], option.duration)
            if previous is not None:
                model.add_end_before_start(previous, task)
            previous = task
    model.set_objective(weight_makespan=1)

    started = time.perf_counter()
    # PyJobShop 0.0.9 sets extra keyword arguments as CP-SAT parameters.
    result = model.solve(
        solver="ortools",
        time_limit=arguments.time_limit,
        display=False,
        num_workers=arguments.workers,
        random_seed=arguments.seed,
    )
    seconds = time.perf_counter() - started

    found = result.objective != float("inf")
    return Run(
        instance=name,
        solver="pyjobshop",
        makespan=int(result.objective) if found else None,
        bound=float(result.lower_bound),
        status=result.status.value,
        seconds=seconds,
        optimum=optimum,
    )


def markdown_report(runs: list[Run], solvers: list[str], arguments: argparse.Namespace) -> str:
    """Return a per-instance table and a per-solver summary as Markdown."""
    by_key = {(run.instance, run.solver): run for run in runs}
    instances = list(dict.fromkeys(run.instance for run in runs))

    header = "| instance | optimum | " + " | ".join(
        f"{solver} makespan | {solver} bound | {solver} s" for solver in solvers
    )
    lines = [
        f"Time limit {arguments.time_limit:g} s, {arguments.workers} workers.",
        "",
        header + " |",
        "|" + " --- |" * (2 + 3 * len(solvers)),
    ]
    for instance in instances:
        cells = [instance, str(by_key[(instance, solvers[0])].optimum)]
        for solver in solvers:
            run = by_key[(instance, solver)]
            bound = "n/a" if run.bound is None else f"{run.bound:g}"
            cells += [str(run.makespan), bound, f"{run.seconds:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")

    lines += [
        "",
        "| solver | instances | at optimum | proven optimal | mean gap to optimum | total s |",
    ]
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for solver in solvers:
        solved = [run for run in runs if run.solver == solver]
        gaps = [run.gap_to_optimum for run in solved if run.gap_to_optimum is not None]
        at_optimum = sum(1 for run in solved if run.makespan == run.optimum)
        mean_gap = f"{statistics.mean(gaps):.2%}" if gaps else "n/a"
        missing = len(solved) - len(gaps)
        if missing:
            mean_gap += f" ({missing} without a schedule)"
        proven = sum(1 for run in solved if run.status.lower() == "optimal")
        total = sum(run.seconds for run in solved)
        lines.append(
            f"| {solver} | {len(solved)} | {at_optimum} | {proven} | {mean_gap} | {total:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
