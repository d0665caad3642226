"""Deployments of both flows with schedules, served from one long-running process."""

from __future__ import annotations

from datetime import timedelta

from prefect.deployments.runner import RunnerDeployment

from flows.drift_check import DriftOptions, drift_check
from flows.retrain import RetrainOptions, retrain
from flows.settings import FlowSettings

RETRAIN_DEPLOYMENT = "plantpulse-retrain"
DRIFT_CHECK_DEPLOYMENT = "plantpulse-drift-check"


def build_deployments(
    settings: FlowSettings,
    retrain_cron: str,
    drift_check_interval: timedelta,
    retrain_options: RetrainOptions | None = None,
    drift_options: DriftOptions | None = None,
) -> list[RunnerDeployment]:
    """Return a cron-scheduled retrain and an interval-scheduled drift check.

    The stored parameters contain no secret: a served run reads the history token from
    PLANTPULSE_HISTORY__TOKEN in the serving process's environment.
    """
    parameters = settings.deployment_parameters()
    retrain_deployment = retrain.to_deployment(
        name=RETRAIN_DEPLOYMENT,
        cron=retrain_cron,
        parameters={
            "settings": parameters,
            "options": (retrain_options or RetrainOptions()).model_dump(mode="json"),
        },
        description="Train a challenger on recent history; promote it only if it is better.",
    )
    drift_deployment = drift_check.to_deployment(
        name=DRIFT_CHECK_DEPLOYMENT,
        interval=drift_check_interval,
        parameters={
            "settings": parameters,
            "options": (drift_options or DriftOptions()).model_dump(mode="json"),
        },
        description="Compare recent readings and errors with the champion; retrain on drift.",
    )
    # to_deployment returns a coroutine only when called from async code.
    assert isinstance(retrain_deployment, RunnerDeployment)
    assert isinstance(drift_deployment, RunnerDeployment)
    return [retrain_deployment, drift_deployment]


def serve_deployments(deployments: list[RunnerDeployment]) -> None:
    """Serve the deployments until interrupted; scheduled runs start in subprocesses."""
    from prefect import serve

    serve(*deployments)
