"""Prometheus metrics, one registry per app (so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tandem_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "tandem_http_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.actions = Counter("tandem_actions_total", "Actions by outcome", ["action", "outcome"], registry=r)
        self.ws_connections = Gauge("tandem_ws_connections", "Open WebSocket connections", registry=r)
        self.ws_subscriptions = Gauge("tandem_ws_subscriptions", "Active subscriptions", registry=r)
        self.events = Counter("tandem_events_total", "Events read from the change stream", ["type"], registry=r)
        self.deliveries = Counter("tandem_deliveries_total", "Event frames handed to subscribers", registry=r)
        self.slow_closes = Counter("tandem_ws_slow_closes_total", "Subscribers closed with 4009", registry=r)
        self.ws_resumes = Counter(
            "tandem_ws_resumes_total",
            "Subscribes gone live by seq: replayed (from history or database) or a snapshot",
            ["how"],
            registry=r,
        )
        self.reader_restarts = Counter(
            "tandem_change_stream_restarts_total", "Change-stream reader restarts", ["reason"], registry=r
        )

        # labelled children by their labels: `labels()` checks and joins them on every call
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._action_children: dict[tuple[str, str], Counter] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._request_children.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(route))
            self._request_children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_action(self, action: str, outcome: str) -> None:
        """`tandem_actions_total{action, outcome}` + 1 (the caller bounds `action`: backend/api/gate.py)."""
        child = self._action_children.get((action, outcome))
        if child is None:
            child = self._action_children[(action, outcome)] = self.actions.labels(action, outcome)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
