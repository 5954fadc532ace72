"""Dev tooling of the monitor: scenario worlds and ``make bench-monitor`` (not part of the service)."""
