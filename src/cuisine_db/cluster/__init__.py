"""Local clusters started on demand: the start policy, and connections that may start the cluster they need."""

from cuisine_db.cluster.on_demand import OBSERVING, connect, start_on_demand, start_refusal, up

__all__ = ["OBSERVING", "connect", "start_on_demand", "start_refusal", "up"]
