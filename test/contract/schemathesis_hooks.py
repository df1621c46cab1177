"""Schemathesis hooks for the contract run; schemathesis.toml loads this file.

The tenant headers X-Org-ID and X-User-ID carry a real tenant that the harness creates and the
configuration fills in. Schemathesis 4's dependency analysis reads them as references to
resources that no operation produces ("XOrg", "XUser"), and therefore never starts a stateful
scenario at a tenant-scoped create: every scenario would begin with POST /organizations and
stop there. This drops those two inputs from its dependency graph; nothing else changes.

Bodies are I-JSON (see the spec's "What is stored"): a number that a 64-bit float cannot hold
exactly is refused, a rule JSON Schema cannot express. Hypothesis writes Python integers of any
size into free-form documents; bodies holding one such are left out (Python's floats are 64-bit,
so every float it writes is one the API stores exactly). Unpaired surrogates are kept out by
`codec = "utf-8"` in schemathesis.toml.
"""

import schemathesis
from schemathesis.core.parameters import ParameterLocation

TENANT_HEADERS = {"x-org-id", "x-user-id"}


@schemathesis.hook
def after_load_schema(context, schema):
    for node in schema.analysis.dependency_graph.operations.values():
        node.inputs = [
            slot
            for slot in node.inputs
            if not (slot.parameter_location == ParameterLocation.HEADER and str(slot.parameter_name).lower() in TENANT_HEADERS)
        ]


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
