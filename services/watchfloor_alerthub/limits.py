"""The alert hub's bounds: what keeps its latency and memory (Compose gives it 256 MiB) bounded
whatever Alertmanager, the pages and other clients send it.

Memory budget, worst case: stored alerts (MAX_STORED_BYTES, held once encoded and once chunked
for snapshots) + the webhooks being parsed (WEBHOOK_CONCURRENCY x MAX_BODY_BYTES and their parsed
form) + per WebSocket client one chunk in flight above the transport's 64 KiB high-water mark
(DEFAULT_MAX_CLIENTS x ~2 x CHUNK_BYTES) + Alertmanager's alert list while reconciling
(MAX_ALERTMANAGER_RESPONSE_BYTES and its parsed form), on top of the ~65 MiB the process starts at.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

# Request bodies (checked while they stream in, never after buffering them).
MAX_BODY_BYTES = 4 * MIB  # a webhook
MAX_ACK_BODY_BYTES = 16 * KIB  # an acknowledgement
WEBHOOK_CONCURRENCY = 2  # webhooks read and parsed at once; the others wait, unread
BODY_TIMEOUT_SECONDS = 30.0  # a body that trickles in slower holds a slot no longer (408)

# What is stored: rows and bytes (labels + annotations + generatorURL, encoded).
MAX_ALERT_BYTES = 16 * KIB  # one alert; a bigger one is refused with a 422 naming it
MAX_STORED_BYTES = 16 * MIB  # all alerts, firing and resolved
DEFAULT_MAX_ALERTS = 10_000  # WATCHFLOOR_ALERTHUB_MAX_ALERTS
DEFAULT_RESOLVED_RETENTION_SECONDS = 3600.0  # WATCHFLOOR_ALERTHUB_RESOLVED_RETENTION_SECONDS

# Agreement with Alertmanager (resolutions it never sends: silenced alerts, missed webhooks).
DEFAULT_RECONCILE_SECONDS = 30.0  # WATCHFLOOR_ALERTHUB_RECONCILE_SECONDS
# Alertmanager keeps no alerts across a restart; Prometheus re-sends them within its resend delay
# (1 min) and the route's group_wait, so an Alertmanager younger than this resolves nothing.
DEFAULT_ALERTMANAGER_WARMUP_SECONDS = 120.0  # WATCHFLOOR_ALERTHUB_ALERTMANAGER_WARMUP_SECONDS
MAX_ALERTMANAGER_RESPONSE_BYTES = 16 * MIB
ALERTMANAGER_TIMEOUT_SECONDS = 10.0

# WebSocket clients.
DEFAULT_MAX_CLIENTS = 100  # WATCHFLOOR_ALERTHUB_MAX_CLIENTS; more are closed with 1013
MAX_PENDING_CLIENTS = 32  # connections that have not authenticated yet
AUTH_TIMEOUT_SECONDS = 5.0  # to send {"type": "auth", "token": ...}
MAX_INCOMING_MESSAGE_BYTES = 4 * KIB  # the auth message is all a page ever sends
QUEUE_MESSAGES = 256  # changes queued per client; past it the client gets a snapshot instead
CHUNK_BYTES = 64 * KIB  # a snapshot is sent in parts of about this size
SEND_TIMEOUT_SECONDS = 30.0  # a client that takes no message for this long is closed
