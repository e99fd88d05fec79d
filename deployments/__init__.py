"""Deployments: schedules, work pools and automations (alerting) for the flows."""
