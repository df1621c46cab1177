"""Schemathesis hooks for the contract run; schemathesis.toml loads this file.

The tenant headers X-Org-ID and X-User-ID carry a real tenant that the harness creates and the
configuration fills in. Schemathesis 4's dependency analysis reads them as references to
resources that no operation produces ("XOrg", "XUser"), and therefore never starts a stateful
scenario at a tenant-scoped create: every scenario would begin with POST /organizations and
stop there. This drops those two inputs from its dependency graph; nothing else changes.
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
