"""Prefect flows that keep the champion model fresh: retrain and drift check."""

from flows.drift_check import DriftOptions, DriftResult, drift_check
from flows.retrain import RetrainOptions, RetrainResult, retrain
from flows.serve import build_deployments, serve_deployments
from flows.settings import FlowSettings

__all__ = [
    "DriftOptions",
    "DriftResult",
    "FlowSettings",
    "RetrainOptions",
    "RetrainResult",
    "build_deployments",
    "drift_check",
    "retrain",
    "serve_deployments",
]
