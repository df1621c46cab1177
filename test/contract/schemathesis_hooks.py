"""Schemathesis hooks for the contract run; schemathesis.toml loads this file.

Bodies are I-JSON (see the spec's "What is stored"): a number that a 64-bit float cannot hold
exactly is refused, a rule JSON Schema cannot express. Hypothesis writes Python integers of any
size into free-form documents; bodies holding one such are left out (Python's floats are 64-bit,
so every float it writes is one the API stores exactly). Unpaired surrogates are kept out by
`codec = "utf-8"` in schemathesis.toml.

With API keys, the operations on organizations are sent with the operator token (the harness
passes it in TOLSTOY_OPERATOR_TOKEN): a member's key reaches only its own organization, and the
operator's reaches the ones the fuzzer creates, so that they can be read, updated and deleted.
"""

import os

import schemathesis

OPERATOR_TOKEN = os.environ.get("TOLSTOY_OPERATOR_TOKEN")


@schemathesis.hook
def before_call(context, case, **kwargs):
    if OPERATOR_TOKEN and "Organizations" in (case.operation.tags or []):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {OPERATOR_TOKEN}"}


def holds_inexact_number(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return int(float(value)) != value if abs(value) < 2**1024 else True
    if isinstance(value, dict):
        return any(holds_inexact_number(item) for item in value.values())
    if isinstance(value, list):
        return any(holds_inexact_number(item) for item in value)
    return False


@schemathesis.hook
def filter_body(context, body):
    return not holds_inexact_number(body)
