"""The sync protocol (SYNC.md): tablets' outboxes land here, exactly once and in order."""
