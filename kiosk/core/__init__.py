"""Shared building blocks: errors, mixins, time, events, auth and rendering helpers."""
