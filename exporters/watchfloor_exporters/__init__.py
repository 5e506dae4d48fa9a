"""watchfloor exporters: turn trading and pipeline activity events into the metric catalog."""
