"""Predictive maintenance against run-to-failure and fixed-interval maintenance.

A simulated plant runs the same Brandimarte plan round after round. Each machine wears
along a real C-MAPSS FD001 run-to-failure trajectory: one running hour is
`--cycles-per-hour` engine cycles. A machine whose wear passes the last cycle of its
trajectory fails: the operation it was running is lost, the machine is down for a
repair, and the repair fits a fresh trajectory. A maintenance window does the same,
in less time and at a lower cost, before the failure.

Every policy plans each round with PlantPulse's CP-SAT scheduler and differs only in
the maintenance deadline it gives each machine:

- run-to-failure: no deadline, so no maintenance;
- fixed-interval: maintain every N cycles of wear, N a quantile of the lives of the
  engines the model was trained on, one policy per quantile given;
- predictive: the RUL p10 of the machine's current trajectory at the round's start,
  from a trained model (`--registry`) or from the true RUL plus Gaussian noise.

The plan of each round is executed with the true wear. Operations start as planned,
or later when a failure holds up their machine or an earlier step of their job. No
policy re-plans inside a round. The trajectories are training engines 61-100 by
default, which a model trained with `plantpulse train --max-engines 60` never saw.

    python benchmarks/maintenance_policies.py --registry REGISTRY --rounds 30
    python benchmarks/maintenance_policies.py --predictor noisy-truth --noise-cycles 15
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Run as a script, this file's folder comes first on sys.path, and benchmarks/scheduler.py
# would hide the `scheduler` package.
sys.path = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).parent]

from models.cmapss import CONTEXT_FIELDS, RUL_CAP, EngineRun, channel_columns, load_cmapss  # noqa: E402
from scheduler import (  # noqa: E402
    Job,
    MachineDowntime,
    MachineMaintenance,
    ObjectiveWeights,
    Plan,
    Schedule,
    SolverSettings,
    check_schedule,
    read_fjs,
    solve,
)

logger = logging.getLogger("benchmarks.maintenance_policies")

# Best known makespans of the Brandimarte instances, used to set each round's due date.
BRANDIMARTE_OPTIMA = {"mk01": 40, "mk02": 26, "mk03": 204, "mk04": 60, "mk05": 172}
P10_Z = 1.2816  # the standard normal's 90th percentile


@dataclass(frozen=True)
class PlantCosts:
    """Durations in plan hours and costs in one currency unit."""

    maintenance_hours: int = 8
    maintenance_cost: float = 1_000.0
    repair_hours: int = 24
    repair_cost: float = 5_000.0
    downtime_cost_per_hour: float = 200.0
    tardiness_cost_per_hour: float = 100.0


@dataclass
class MachineLife:
    """The trajectory a machine now wears along, and how many cycles of it are used."""

    engine: EngineRun
    wear: float = 0.0

    @property
    def life(self) -> int:
        """Cycles the machine can run before it fails: the trajectory's last cycle."""
        return int(self.engine.cycles[-1])

    @property
    def true_rul(self) -> float:
        return self.life - self.wear


class Fleet:
    """Each machine's sequence of trajectories, the same for every policy."""

    def __init__(self, machines: Sequence[str], engines: Sequence[EngineRun], seed: int) -> None:
        generator = np.random.default_rng(seed)
        self._orders = {
            machine: [engines[i] for i in generator.permutation(len(engines))]
            for machine in machines
        }
        self._fitted = dict.fromkeys(machines, 0)
        self.lives = {machine: MachineLife(self._orders[machine][0]) for machine in machines}

    def renew(self, machine: str) -> None:
        """Fit the machine's next trajectory, as a repair or maintenance does."""
        self._fitted[machine] += 1
        order = self._orders[machine]
        self.lives[machine] = MachineLife(order[self._fitted[machine] % len(order)])


# A policy returns a machine's maintenance deadline, in cycles from now, or None.
DeadlinePolicy = Callable[[MachineLife], float | None]


class ModelRul:
    """RUL p10 from a trained PlantPulse model, on the trajectory's sensor window."""

    def __init__(self, registry: Path) -> None:
        from models import InferenceEngine

        self.engine = InferenceEngine.from_registry(registry, device="cpu")
        self.errors: list[float] = []
        self.true_ruls: list[float] = []
        self.covered: list[bool] = []

    @property
    def description(self) -> str:
        return f"model {self.engine.version} (window {self.engine.window} cycles)"

    def __call__(self, life: MachineLife) -> float | None:
        window = self.engine.window
        used = int(life.wear)
        if used < window:
            # No full window yet. Every FD001 engine lasts at least 128 cycles, far more
            # than one window plus one round, so the machine goes without a deadline.
            return None

        rows = slice(used - window, used)
        channels = [int(name[1:]) - 1 for name in self.engine.channels]
        sensors = life.engine.sensors[rows][:, channels][None]
        context_columns = channel_columns(self.engine.context_fields, CONTEXT_FIELDS)
        context = life.engine.context[rows][:, context_columns].mean(axis=0)[None]
        (prediction,) = self.engine.predict(sensors, context, attributions=False)

        self.errors.append(prediction.rul_p50 - life.true_rul)
        self.true_ruls.append(life.true_rul)
        self.covered.append(prediction.rul_p10 <= life.true_rul)
        return prediction.rul_p10


class NoisyTrueRul:
    """RUL p10 of a predictor whose p50 is the true RUL plus Gaussian noise."""

    def __init__(self, noise_cycles: float, seed: int) -> None:
        self.noise_cycles = noise_cycles
        self.generator = np.random.default_rng(seed)
        self.errors: list[float] = []
        self.true_ruls: list[float] = []
        self.covered: list[bool] = []

    @property
    def description(self) -> str:
        return f"true RUL plus N(0, {self.noise_cycles:g}^2) noise, p10 = p50 - 1.28 sigma"

    def __call__(self, life: MachineLife) -> float | None:
        p50 = life.true_rul + self.generator.normal(0.0, self.noise_cycles)
        p10 = max(0.0, p50 - P10_Z * self.noise_cycles)
        self.errors.append(p50 - life.true_rul)
        self.true_ruls.append(life.true_rul)
        self.covered.append(p10 <= life.true_rul)
        return p10


def fixed_interval(interval_cycles: float) -> DeadlinePolicy:
    return lambda life: interval_cycles - life.wear


def run_to_failure(life: MachineLife) -> float | None:
    return None


@dataclass
class PolicyResult:
    """Failures, maintenance and delays of one policy over the whole simulation."""

    policy: str
    failures: int = 0
    maintenances: int = 0
    downtime_hours: float = 0.0
    tardiness_hours: float = 0.0
    hours: int = 0
    fallback_rounds: int = 0
    life_used_at_maintenance: list[float] = field(default_factory=list)

    def cost(self, costs: PlantCosts) -> dict[str, float]:
        maintenance = self.maintenances * costs.maintenance_cost + self.failures * costs.repair_cost
        downtime = self.downtime_hours * costs.downtime_cost_per_hour
        tardiness = self.tardiness_hours * costs.tardiness_cost_per_hour
        return {
            "downtime": downtime,
            "maintenance": maintenance,
            "tardiness": tardiness,
            "total": downtime + maintenance + tardiness,
        }


@dataclass(frozen=True)
class Simulation:
    """Everything the policies share: plan, fleet, costs and solver settings."""

    template: Plan
    due_hours: int
    rounds: int
    cycles_per_hour: float
    costs: PlantCosts
    crew_size: int
    settings: SolverSettings
    engines: Sequence[EngineRun]
    seed: int


def simulate(simulation: Simulation, name: str, policy: DeadlinePolicy) -> PolicyResult:
    """Run every round with `policy` and return its failures, maintenance and delays."""
    fleet = Fleet(simulation.template.machines, simulation.engines, simulation.seed)
    result = PolicyResult(policy=name)
    machine_free = dict.fromkeys(simulation.template.machines, 0)
    now = 0

    for round_number in range(simulation.rounds):
        plan = round_plan(simulation, fleet, policy, machine_free, now, round_number)
        schedule = solve(plan, simulation.settings)
        violations = check_schedule(plan, schedule)
        if violations:
            raise RuntimeError(f"{name} round {round_number}: infeasible plan: {violations[:3]}")
        if schedule.status == "fallback":
            result.fallback_rounds += 1

        now = execute(simulation, fleet, plan, schedule, machine_free, now, result)
        logger.debug("%s round %d ends at hour %d", name, round_number, now)

    result.hours = now
    return result


def round_plan(
    simulation: Simulation,
    fleet: Fleet,
    policy: DeadlinePolicy,
    machine_free: dict[str, int],
    now: int,
    round_number: int,
) -> Plan:
    """Build one round's plan on a clock that starts at `now`."""
    costs = simulation.costs
    maintenance = []
    for machine, life in fleet.lives.items():
        cycles_left = policy(life)
        if cycles_left is None:
            continue
        deadline = math.floor(cycles_left / simulation.cycles_per_hour)
        maintenance.append(
            MachineMaintenance(
                machine,
                deadline,
                costs.maintenance_hours,
                costs.maintenance_cost,
                reason=f"{cycles_left:.0f} cycles left",
            )
        )

    downtime = [
        MachineDowntime(machine, 0, free - now, "repair")
        for machine, free in machine_free.items()
        if free > now
    ]
    jobs = tuple(
        Job(f"R{round_number}-{job.id}", job.operations, due=simulation.due_hours)
        for job in simulation.template.jobs
    )
    return Plan(
        machines=simulation.template.machines,
        jobs=jobs,
        maintenance=tuple(maintenance),
        crew_size=simulation.crew_size,
        name=f"round {round_number}",
        downtime=tuple(downtime),
    )


def execute(
    simulation: Simulation,
    fleet: Fleet,
    plan: Plan,
    schedule: Schedule,
    machine_free: dict[str, int],
    now: int,
    result: PolicyResult,
) -> int:
    """Run `schedule` with the true wear and return the hour the round ends.

    Items run in the order of their planned start, each as soon as its planned start,
    its machine and its job's previous step allow.
    """
    costs = simulation.costs
    items: list[tuple[int, int, str, object]] = [
        (window.start, 0, window.machine, window) for window in schedule.maintenance
    ]
    items += [(item.start, 1, item.machine, item) for item in schedule.operations]
    items.sort(key=lambda entry: (entry[0], entry[1]))
    job_ready: dict[str, int] = {}
    round_end = now

    for planned_start, _, machine, item in items:
        start = max(now + planned_start, machine_free[machine])
        if not hasattr(item, "job"):
            life = fleet.lives[machine]
            result.life_used_at_maintenance.append(life.wear / life.life)
            result.maintenances += 1
            result.downtime_hours += costs.maintenance_hours
            fleet.renew(machine)
            machine_free[machine] = start + costs.maintenance_hours
            continue

        job_id = item.job  # type: ignore[attr-defined]
        duration = item.end - item.start  # type: ignore[attr-defined]
        start = max(start, job_ready.get(job_id, now))
        end = run_operation(simulation, fleet, machine, start, duration, result)
        machine_free[machine] = end
        job_ready[job_id] = end
        round_end = max(round_end, end)

    due = now + simulation.due_hours
    result.tardiness_hours += sum(max(0, end - due) for end in job_ready.values())
    return round_end


def run_operation(
    simulation: Simulation,
    fleet: Fleet,
    machine: str,
    start: int,
    duration: int,
    result: PolicyResult,
) -> int:
    """Run one operation from `start`, with a failure and repair if the life runs out."""
    costs = simulation.costs
    life = fleet.lives[machine]
    cycles = duration * simulation.cycles_per_hour

    if life.wear + cycles <= life.life:
        life.wear += cycles
        return start + duration

    # The machine fails part-way: the work so far is lost and the step starts again
    # after the repair, on a fresh trajectory.
    failed_at = start + math.ceil(life.true_rul / simulation.cycles_per_hour)
    result.failures += 1
    result.downtime_hours += costs.repair_hours
    fleet.renew(machine)
    restart = failed_at + costs.repair_hours
    fleet.lives[machine].wear += cycles
    return restart + duration


def prediction_summary(predictor: ModelRul | NoisyTrueRul) -> str:
    """Describe the p50 error and the p10 coverage over every prediction the policy made."""
    errors = np.asarray(predictor.errors)
    if not len(errors):
        return "It made no prediction"

    near_end = np.asarray(predictor.true_ruls) <= RUL_CAP
    summary = (
        f"Over its {len(errors)} predictions, p50 minus the true RUL had mean "
        f"{errors.mean():+.1f} and RMSE {np.sqrt((errors**2).mean()):.1f} cycles"
    )
    if near_end.any():
        # The model's training target is capped at RUL_CAP, so its error is meaningful
        # only below that.
        late = errors[near_end]
        summary += (
            f" ({np.sqrt((late**2).mean()):.1f} cycles over the {len(late)} with a true RUL "
            f"of at most {RUL_CAP})"
        )
    return summary + f", and p10 was at or below the true RUL in {np.mean(predictor.covered):.0%}"


def markdown_report(
    results: list[PolicyResult], costs: PlantCosts, predictor_description: str
) -> str:
    rows = [
        "| policy | unplanned failures | maintenance windows | life used at maintenance | "
        "downtime h | downtime cost | maintenance cost | tardiness cost | total cost |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        cost = result.cost(costs)
        life_used = (
            f"{np.mean(result.life_used_at_maintenance):.0%}"
            if result.life_used_at_maintenance
            else "n/a"
        )
        rows.append(
            f"| {result.policy} | {result.failures} | {result.maintenances} | {life_used} | "
            f"{result.downtime_hours:.0f} | {cost['downtime']:,.0f} | {cost['maintenance']:,.0f} "
            f"| {cost['tardiness']:,.0f} | {cost['total']:,.0f} |"
        )

    by_name = {result.policy: result for result in results}
    lines = [*rows, "", f"Predictive policy's RUL: {predictor_description}."]
    if {"run-to-failure", "predictive"} <= set(by_name):
        baseline = by_name["run-to-failure"].failures
        if baseline:
            reduction = 1 - by_name["predictive"].failures / baseline
            lines.append(
                f"Unplanned failures, predictive against run-to-failure: {-reduction:+.0%}."
            )
    fixed = [r for r in results if r.policy.startswith("fixed-interval")]
    if fixed and "predictive" in by_name:
        best = min(fixed, key=lambda result: result.cost(costs)["total"])
        best_cost = best.cost(costs)["total"]
        predictive = by_name["predictive"].cost(costs)["total"]
        change = (
            f"{predictive / best_cost - 1:+.1%}" if best_cost else f"{predictive:,.0f} against 0"
        )
        lines.append(
            f"Total cost, predictive against the cheapest fixed interval ({best.policy}): {change}."
        )
    fallbacks = {r.policy: r.fallback_rounds for r in results if r.fallback_rounds}
    if fallbacks:
        lines.append(f"Rounds planned by the dispatching-rule fallback: {fallbacks}.")
    return "\n".join(lines)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(
        os.environ.get("PLANTPULSE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared/data")
    )
    parser.add_argument("--data-dir", type=Path, default=default_data, help="datasets folder")

    parser.add_argument("--instance", default="mk01", help="Brandimarte instance, mk01-mk05")
    parser.add_argument("--rounds", type=int, default=50, help="plan rounds to simulate")
    parser.add_argument(
        "--cycles-per-hour", type=float, default=1.0, help="engine cycles per running hour"
    )
    parser.add_argument("--crew-size", type=int, default=2, help="maintenance crew size")
    parser.add_argument(
        "--due-factor",
        type=float,
        default=1.25,
        help="each round's due date, as a multiple of the instance's best makespan",
    )

    parser.add_argument(
        "--predictor",
        choices=["model", "noisy-truth"],
        default="model",
        help="where the predictive policy's RUL p10 comes from",
    )
    parser.add_argument("--registry", type=Path, help="model registry (for --predictor model)")
    parser.add_argument(
        "--noise-cycles", type=float, default=15.0, help="noise sigma for --predictor noisy-truth"
    )
    parser.add_argument(
        "--first-engine",
        type=int,
        default=61,
        help="first FD001 training engine (1-based) used as a trajectory; the model must "
        "not have been trained on it or the later ones",
    )
    parser.add_argument(
        "--fixed-interval-quantiles",
        default="0.05,0.1,0.25",
        help="comma-separated; one fixed-interval policy per value, which maintains after "
        "that quantile of the model-training engines' lives",
    )

    parser.add_argument("--time-limit", type=float, default=2.0, help="solver seconds per round")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="CP-SAT search workers; one worker searches deterministically, so runs repeat "
        "whenever every round is solved within the time limit",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of trajectory order and noise")
    return parser.parse_args()


def main() -> None:
    arguments = parse_arguments()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("scheduler").setLevel(logging.WARNING)

    data = load_cmapss(arguments.data_dir)
    known = data.train[: arguments.first_engine - 1]
    held_out = data.train[arguments.first_engine - 1 :]
    if not known or not held_out:
        raise SystemExit(f"--first-engine must be between 2 and {len(data.train)}")

    if arguments.predictor == "model":
        if arguments.registry is None:
            raise SystemExit("--predictor model needs --registry; train one with plantpulse train")
        predictor: ModelRul | NoisyTrueRul = ModelRul(arguments.registry)
    else:
        predictor = NoisyTrueRul(arguments.noise_cycles, arguments.seed)

    known_lives = [int(engine.cycles[-1]) for engine in known]
    intervals = {
        float(quantile): float(np.quantile(known_lives, float(quantile)))
        for quantile in arguments.fixed_interval_quantiles.split(",")
    }
    template = read_fjs(arguments.data_dir / "fjsp" / "brandimarte" / f"{arguments.instance}.fjs")
    costs = PlantCosts()
    simulation = Simulation(
        template=template,
        due_hours=math.ceil(BRANDIMARTE_OPTIMA[arguments.instance] * arguments.due_factor),
        rounds=arguments.rounds,
        cycles_per_hour=arguments.cycles_per_hour,
        costs=costs,
        crew_size=arguments.crew_size,
        settings=SolverSettings(
            time_limit_s=arguments.time_limit,
            workers=arguments.workers,
            weights=ObjectiveWeights(
                makespan=1, weighted_tardiness=1, maintenance_cost=0.001, changes=0
            ),
        ),
        engines=held_out,
        seed=arguments.seed,
    )

    policies: list[tuple[str, DeadlinePolicy]] = [("run-to-failure", run_to_failure)]
    for quantile, interval in intervals.items():
        name = f"fixed-interval {interval:.0f} cycles (q{quantile:g})"
        policies.append((name, fixed_interval(interval)))
    policies.append(("predictive", predictor))
    results = []
    for name, policy in policies:
        result = simulate(simulation, name, policy)
        logger.info(
            "%s: %d failures, %d maintenance windows in %d hours",
            name,
            result.failures,
            result.maintenances,
            result.hours,
        )
        results.append(result)

    description = f"{predictor.description}. {prediction_summary(predictor)}"
    print(
        f"{arguments.instance} x {arguments.rounds} rounds, due {simulation.due_hours} h after "
        f"each round's start; {len(held_out)} FD001 training engines from number "
        f"{arguments.first_engine} as trajectories, {arguments.cycles_per_hour:g} cycle(s) per "
        f"running hour; fixed intervals are quantiles of the lives of engines "
        f"1-{arguments.first_engine - 1}; crew {arguments.crew_size}; "
        f"{dataclasses.asdict(costs)}\n"
    )
    print(markdown_report(results, costs, description))


if __name__ == "__main__":
    main()
