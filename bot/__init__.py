"""Signoff's Slack front-end: paused workflow steps become interactive Slack messages."""
