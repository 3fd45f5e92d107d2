"""Monitoring: the daily checks (db-monitor), storage growth (db-growth) and the Prometheus endpoint."""

from cuisine_db.monitor.growth import Forecast, GrowthReport, forecast
from cuisine_db.monitor.service import MonitorReport, growth_report, run_monitor

__all__ = ["Forecast", "GrowthReport", "MonitorReport", "forecast", "growth_report", "run_monitor"]
