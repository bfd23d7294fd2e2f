"""Sensors: the inbox (watched folder → titles and runs), the run-failure recorder, the
recovery of runs whose process died, the optimizer's retrain on new labels, and the context
learner's memory rebuild when titles finish, and budget alerts."""

from cpw_sensors.budget import budget_alerts_sensor
from cpw_sensors.context import context_memory_sensor
from cpw_sensors.dead_runs import recover_dead_runs_sensor
from cpw_sensors.inbox import inbox_sensor
from cpw_sensors.optimizer import optimizer_retrain_sensor
from cpw_sensors.run_failures import record_run_failures

sensors = [inbox_sensor, record_run_failures, recover_dead_runs_sensor,
           optimizer_retrain_sensor, context_memory_sensor, budget_alerts_sensor]
