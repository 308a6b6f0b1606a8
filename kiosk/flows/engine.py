"""Stand-in for the flows runtime until it lands: the builder's pages call only these."""


def flow_plan(*, version, patient, at, event_kind=None, event_data=None):
    """The dry run of a flow (not available in this stand-in)."""
    raise NotImplementedError("The flows runtime is not installed yet.")


def steps_failed() -> list:
    """Steps whose retries are spent (none in this stand-in)."""
    return []


def step_retry(*, step, user) -> None:
    """Send a failed step round again (not available in this stand-in)."""
    raise NotImplementedError("The flows runtime is not installed yet.")
