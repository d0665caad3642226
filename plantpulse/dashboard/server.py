"""Run the dashboard: the topic follower thread plus uvicorn, in this thread or a background one."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from types import FrameType, TracebackType

import uvicorn
from pydantic import SecretStr

from ingest.config import KafkaConfig
from plantpulse.dashboard.app import create_app
from plantpulse.dashboard.follower import TopicFollower
from plantpulse.dashboard.state import DashboardState
from plantpulse.settings import DashboardSettings

logger = logging.getLogger(__name__)


class DashboardError(RuntimeError):
    """The dashboard cannot start with these settings, or its server failed."""


def is_loopback_host(host: str) -> bool:
    """Return True for `localhost` and loopback IP addresses; False for any other name."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_address(host: str, token: SecretStr | None) -> None:
    """Raise DashboardError when `host` is not loopback and no non-empty token is set."""
    if is_loopback_host(host):
        return
    if token is None or not token.get_secret_value():
        raise DashboardError(
            f"cannot serve the dashboard on {host} without a token, because anyone who can "
            "reach that address could read it. Set PLANTPULSE_DASHBOARD__TOKEN (or "
            "dashboard.token in the settings file), or bind to 127.0.0.1."
        )


class _Server(uvicorn.Server):
    """A uvicorn server that closes the dashboard state when asked to exit.

    Closing the state ends the open event streams, so shutdown need not wait for them.
    """

    def __init__(self, config: uvicorn.Config, state: DashboardState) -> None:
        super().__init__(config)
        self._state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._state.close()
        super().handle_exit(sig, frame)


class DashboardServer:
    """The dashboard over one Kafka cluster: `run()` blocks, `start()` serves from a thread.

    The listening socket is bound in the constructor, so a port in use fails there and
    `url` is known at once, also for port 0.
    """

    def __init__(
        self,
        settings: DashboardSettings,
        kafka: KafkaConfig,
        risk_threshold_cycles: float = 30.0,
        push_interval_s: float = 0.5,
    ) -> None:
        check_bind_address(settings.host, settings.token)
        self.state = DashboardState(
            history_points=settings.history_points,
            max_machines=settings.max_machines,
            risk_threshold_cycles=risk_threshold_cycles,
        )
        self.follower = TopicFollower(kafka, self.state)
        # An empty token counts as none, as in check_bind_address.
        token = settings.token if settings.token and settings.token.get_secret_value() else None
        app = create_app(self.state, token, push_interval_s)

        family = socket.AF_INET6 if ":" in settings.host.strip("[]") else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((settings.host.strip("[]"), settings.port))
            self._socket.listen(128)
        except OSError as error:
            self._socket.close()
            raise DashboardError(
                f"cannot listen on {settings.host}:{settings.port}: {error.strerror}; "
                "choose another --port or --host"
            ) from error
        self.host = settings.host
        self.port = int(self._socket.getsockname()[1])

        config = uvicorn.Config(
            app,
            log_level="warning",
            # The access log would record ?token= query strings.
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
        )
        self._server = _Server(config, self.state)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host.strip('[]')}]" if ":" in self.host.strip("[]") else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        """Serve in this thread until SIGINT or SIGTERM, then stop the follower."""
        self.follower.start()
        logger.info("dashboard serving %s", self.url)
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self.state.close()
            self.follower.stop()
            self._socket.close()
            logger.info("dashboard on %s stopped", self.url)

    def start(self, timeout_s: float = 10.0) -> None:
        """Serve from a background thread; return once the server accepts connections."""
        if self._thread is not None:
            raise DashboardError("the dashboard server was already started")
        self.follower.start()
        self._thread = threading.Thread(
            target=self._serve_aside, name="dashboard-http", daemon=True
        )
        self._thread.start()

        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread_alive():
                self.stop()
                raise DashboardError(f"the dashboard server failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise DashboardError(f"the dashboard server did not start within {timeout_s:.0f} s")
            time.sleep(0.05)
        logger.info("dashboard serving %s", self.url)

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _serve_aside(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as error:  # start() reports it
            self._error = error
            logger.exception("dashboard server on %s failed", self.url)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server and the follower and wait for both; safe to call twice."""
        self.state.close()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("dashboard server did not stop within %.0f s", timeout_s)
        self.follower.stop()
        self._socket.close()

    def __enter__(self) -> DashboardServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
