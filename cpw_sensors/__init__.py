"""Sensors and schedules. Now: the run-failure recorder; later: the inbox and retraining."""

from cpw_sensors.run_failures import record_run_failures

sensors = [record_run_failures]
