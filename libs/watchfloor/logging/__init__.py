"""Structured ECS logging for watchfloor services: one call to configure, stdlib logging to use.

from watchfloor.logging import configure_logging
configure_logging("order-router", logstash_host="localhost")
logging.getLogger(__name__).info("order filled", extra={"order_id": "o-1", "qty": 100})
"""

from watchfloor.logging.audit import AuditVerification, audit, verify_audit_chain
from watchfloor.logging.config import configure_logging, shutdown_logging
from watchfloor.logging.ecs import (
    DATASET_AUDIT,
    DATASET_ERRORS,
    DATASET_LOGS,
    DATASET_TRADING,
)
from watchfloor.logging.masking import Masker

__all__ = [
    "DATASET_AUDIT",
    "DATASET_ERRORS",
    "DATASET_LOGS",
    "DATASET_TRADING",
    "AuditVerification",
    "Masker",
    "audit",
    "configure_logging",
    "shutdown_logging",
    "verify_audit_chain",
]
