"""Running cells in the IPython shell of the ``shell``/``ip`` fixtures."""

from __future__ import annotations


def run_cell(ip, source: str):
    """Run a cell in the shell; returns (captured output, execution result)."""
    from IPython.utils.capture import capture_output

    with capture_output() as cap:
        result = ip.run_cell(source)
    return cap, result
