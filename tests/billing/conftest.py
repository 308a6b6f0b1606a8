"""Billing tests use the sync tests' tablet (a provisioned device posting ops)."""

from tests.sync.conftest import SyncTablet, tablet  # noqa: F401
