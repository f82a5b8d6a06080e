"""What every SDK check script shares: the failed-check exception, ``expect``, the gateway's
address from the environment, and the loop that runs named checks and reports them.

The Rust end-to-end tests (tests/e2e/python.rs) run each script with ``GATEWAY_URL``
(``http://127.0.0.1:PORT``, no ``/v1``) and ``GATEWAY_KEY`` set, and read its exit status and
the ``all checks passed`` line.
"""

import os
import sys
import traceback


class CheckFailed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def gateway_from_env(script):
    """``(base_url, api_key)`` from the environment, or ``None`` after saying what is missing."""
    base_url = os.environ.get("GATEWAY_URL")
    api_key = os.environ.get("GATEWAY_KEY")
    if not base_url or not api_key:
        print(f"{script}: set GATEWAY_URL and GATEWAY_KEY", file=sys.stderr)
        return None
    return base_url.rstrip("/"), api_key


def run_checks(script, checks, sdk):
    """Runs ``checks`` (``(name, callable)`` pairs) in order, stopping at the first failure.

    Returns the exit status: 0 when all passed, 1 otherwise (with the failed check named, and
    the traceback of an unexpected exception). ``sdk`` (e.g. ``openai 2.5.0``) goes in the
    final line.
    """
    for name, check in checks:
        try:
            check()
        except CheckFailed as failure:
            print(f"{script}: FAILED {name}: {failure}", file=sys.stderr)
            return 1
        except Exception:  # noqa: BLE001 - any SDK error is a failed check, reported in full
            print(f"{script}: FAILED {name} with an exception:", file=sys.stderr)
            traceback.print_exc()
            return 1
        print(f"{script}: ok {name}")
    print(f"{script}: all checks passed ({sdk})")
    return 0
