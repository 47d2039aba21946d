"""Run state: status, pause requirements, events and the run output."""
