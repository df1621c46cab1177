"""Schemathesis hooks for the contract run; schemathesis.toml loads this file.

Bodies are I-JSON (see the spec's "What is stored"): a number that a 64-bit float cannot hold
exactly is refused, a rule JSON Schema cannot express. Hypothesis writes Python integers of any
size into free-form documents; bodies holding one such are left out (Python's floats are 64-bit,
so every float it writes is one the API stores exactly). Unpaired surrogates are kept out by
`codec = "utf-8"` in schemathesis.toml.

With API keys, the operations on organizations are sent with the operator token (the harness
passes it in TOLSTOY_OPERATOR_TOKEN): a member's key reaches only its own organization, and the
operator's reaches the ones the fuzzer creates, so that they can be read, updated and deleted.

The run's own member (the harness passes its id in TOLSTOY_CONTRACT_MEMBER) stays an owner: a case
that would make it a plain member (PUT or PATCH /users/{id} with `role: member`) or remove it
(DELETE /users/{id}) is left out. The fuzzer creates owners of its own, after which the server
rightly lets the run's member be demoted or leave; every owner-only operation after that, such as
deleting an execution log, would answer 403 or 401 for the rest of the run, and never be reached.

The spec's example Idempotency-Key and If-Match are single values: sent as they are, the first
POST with the key would make every later POST of another request a 422, and the example tag
would make every conditional write a 412, so that stateful chains could never create, update or
delete. The example key is made unique per request, and the example tag becomes `*` (any
current tag); other generated values go as generated, and may rightly be refused.

Webhook addresses are secrets no generator can guess: every other well-formed one is replaced by
the address of the run's own webhook trigger (TOLSTOY_CONTRACT_HOOK), so that deliveries of every
kind of body reach the intake.

An organization has at most 20 subscriptions: after each one the examples, coverage and fuzzing
phases create, all but the newest 10 are deleted, so that creates keep succeeding (and the stateful
phase has room for its own) while the ids the fuzzer captured still name live subscriptions to get,
update, rotate and delete. These requests of the hooks carry X-Contract-Cleanup, and the harness
does not count them as chains (scripts/contract.ts).
"""

import itertools
import os
import re
import uuid

import requests
import schemathesis
from schemathesis.generation.meta import TestPhase

OPERATOR_TOKEN = os.environ.get("TOLSTOY_OPERATOR_TOKEN")
MEMBER = os.environ.get("TOLSTOY_CONTRACT_MEMBER")
EXAMPLE_IDEMPOTENCY_KEY = "2c4b7b0e-7c1e-4f43-9d7e-9b8f0f1b6f2a"
EXAMPLE_ETAG = '"3q2-7w0hZ2NRRtwprV8wWSN3yfLrj0ymbHLSmGtKq4I"'
HOOK_TOKEN = os.environ.get("TOLSTOY_CONTRACT_HOOK")
HOOK_TOKEN_FORM = re.compile(r"^wh_[A-Za-z0-9_-]{43}$")
hook_calls = itertools.count()
# How many of its subscriptions the tenant keeps while the fuzzer creates more (20 at most).
SUBSCRIPTIONS_KEPT = 10


@schemathesis.hook
def before_call(context, case, **kwargs):
    headers = dict(case.headers or {})
    if OPERATOR_TOKEN and "Organizations" in (case.operation.tags or []):
        headers["Authorization"] = f"Bearer {OPERATOR_TOKEN}"
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and value == EXAMPLE_IDEMPOTENCY_KEY:
            headers[name] = str(uuid.uuid4())
        if name.lower() == "if-match" and value == EXAMPLE_ETAG:
            headers[name] = "*"
    case.headers = headers
    to_the_runs_webhook(case)


def to_the_runs_webhook(case):
    """Every other well-formed webhook address becomes the run's own trigger's, so that
    deliveries reach the intake (a random address names no trigger: 404)."""
    if case.operation.path != "/hooks/{token}" or not HOOK_TOKEN:
        return
    token = (case.path_parameters or {}).get("token", "")
    if isinstance(token, str) and HOOK_TOKEN_FORM.match(token) and next(hook_calls) % 2 == 0:
        case.path_parameters = {**case.path_parameters, "token": HOOK_TOKEN}


@schemathesis.hook
def after_call(context, case, response):
    if case.operation.path != "/subscriptions" or case.operation.method.lower() != "post" or response.status_code != 201:
        return
    if case.meta is not None and case.meta.phase.name == TestPhase.STATEFUL:
        return
    sent = response.request
    credentials = {name: value for name, value in sent.headers.items() if name.lower() in ("authorization", "x-org-id", "x-user-id")}
    headers = {**credentials, "X-Contract-Cleanup": "subscriptions"}
    subscriptions = sent.url.split("?")[0].rstrip("/")
    listed = requests.get(f"{subscriptions}?limit=100", headers=headers, timeout=10).json()["items"]
    for older in listed[SUBSCRIPTIONS_KEPT:]:
        requests.delete(f"{subscriptions}/{older['id']}", headers=headers, timeout=10)


@schemathesis.hook
def filter_case(context, case):
    operation = case.operation
    if not MEMBER or operation.path != "/users/{id}" or (case.path_parameters or {}).get("id") != MEMBER:
        return True
    if operation.method.lower() == "delete":
        return False
    body = case.body if isinstance(case.body, dict) else {}
    return body.get("role") != "member"


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
