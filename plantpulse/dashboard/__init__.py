"""The planners' web dashboard: machine health, RUL trends and the live schedule."""

from plantpulse.dashboard.app import create_app, preferred_language
from plantpulse.dashboard.changes import schedule_changes
from plantpulse.dashboard.follower import DASHBOARD_TOPICS, TopicFollower
from plantpulse.dashboard.server import (
    DashboardError,
    DashboardServer,
    check_bind_address,
    is_loopback_host,
)
from plantpulse.dashboard.state import DashboardState

__all__ = [
    "DASHBOARD_TOPICS",
    "DashboardError",
    "DashboardServer",
    "DashboardState",
    "TopicFollower",
    "check_bind_address",
    "create_app",
    "is_loopback_host",
    "preferred_language",
    "schedule_changes",
]
