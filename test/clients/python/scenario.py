"""A first integration, written against the Python client package (npm run clients), installed
with `pip install tolstoy_client-<version>-py3-none-any.whl`: python scenario.py <base URL>"""

import sys
from http import HTTPStatus

from tolstoy_client import AuthenticatedClient, Client
from tolstoy_client.api.actions import create_action
from tolstoy_client.api.execution_logs import create_execution_log, delete_execution_log
from tolstoy_client.api.flows import create_flow, update_flow
from tolstoy_client.api.organizations import create_organization
from tolstoy_client.api.tools import create_tool, get_tool, list_tools
from tolstoy_client.models import (
    ActionCreate,
    AuthType,
    ExecutionLogCreate,
    ExecutionStatus,
    FlowCreate,
    FlowUpdate,
    HttpMethod,
    JsonObject,
    OrganizationCreate,
    Problem,
    ToolCreate,
    OwnerCreate,
)


def ok(response, step, status=HTTPStatus.OK):
    assert response.status_code == status, f"{step}: {response.status_code} {response.content!r}"
    print(f"ok {step}")
    return response.parsed


# Signing up needs no credentials; every other call sends the owner's API key, set once.
signup = Client(base_url=sys.argv[1], raise_on_unexpected_status=True)


def with_key(key):
    return AuthenticatedClient(base_url=sys.argv[1], token=key, raise_on_unexpected_status=True)


organization = ok(
    create_organization.sync_detailed(client=signup, body=OrganizationCreate(name="Python Co", owner=OwnerCreate(email="owner@py.example", name="Owner"))),
    "create an organization and its first member",
    HTTPStatus.CREATED,
)
client = with_key(organization.api_key.key)

slack = ToolCreate(name="Slack API", base_url="https://api.slack.com", auth_type=AuthType.BEARER)
tool = ok(create_tool.sync_detailed(client=client, body=slack, idempotency_key="py-slack-tool"), "create a tool", HTTPStatus.CREATED)
again = create_tool.sync_detailed(client=client, body=slack, idempotency_key="py-slack-tool")
assert again.parsed.id == tool.id and again.headers["Idempotent-Replayed"] == "true", again
print("ok a retried create replays the first")
action = ok(
    create_action.sync_detailed(
        client=client,
        body=ActionCreate(tool_id=tool.id, name="Post a message", key="slack.post", method=HttpMethod.POST, endpoint="/chat.postMessage"),
    ),
    "create an action",
    HTTPStatus.CREATED,
)
inputs = JsonObject.from_dict({"channel": "#general"})
# A step is one of several kinds, nested in one another (a oneOf over a recursive schema): the
# generator leaves steps as plain JSON, written as the API names its fields.
created = create_flow.sync_detailed(client=client, body=FlowCreate(name="Announce", steps=[{"key": "post", "actionId": str(action.id), "inputs": inputs.to_dict()}]))
flow = ok(created, "create a flow", HTTPStatus.CREATED)
tag = created.headers["ETag"]
log = ok(
    create_execution_log.sync_detailed(
        client=client,
        body=ExecutionLogCreate(flow_id=flow.id, execution_id="run-1", step_key="post", status=ExecutionStatus.COMPLETED, duration_ms=12),
    ),
    "create an execution log",
    HTTPStatus.CREATED,
)

for name in ("Second", "Third"):
    create_tool.sync_detailed(client=client, body=ToolCreate(name=name, base_url="https://example.com"))
first = ok(list_tools.sync_detailed(client=client, limit=2), "list the first page")
assert len(first.items) == 2 and first.next_cursor
second = ok(list_tools.sync_detailed(client=client, limit=2, cursor=first.next_cursor), "list the next page")
assert [item.id for item in second.items] == [tool.id] and second.next_cursor is None

renamed = ok(update_flow.sync_detailed(flow.id, client=client, body=FlowUpdate(name="Announce loudly"), if_match=tag), "update a flow")
assert renamed.version == 2
stale = update_flow.sync_detailed(flow.id, client=client, body=FlowUpdate(name="Overwrite"), if_match=tag)
assert stale.status_code == HTTPStatus.PRECONDITION_FAILED and isinstance(stale.parsed, Problem), stale
print("ok a stale If-Match is refused")

stranger = ok(
    create_organization.sync_detailed(client=signup, body=OrganizationCreate(name="Elsewhere", owner=OwnerCreate(email="owner@elsewhere.example"))),
    "create another organization",
    HTTPStatus.CREATED,
)
hidden = get_tool.sync_detailed(tool.id, client=with_key(stranger.api_key.key))
assert hidden.status_code == HTTPStatus.NOT_FOUND and isinstance(hidden.parsed, Problem), hidden
assert hidden.parsed.type_ == "/problems/not-found"
print(f"ok another tenant gets a typed Problem: {hidden.parsed.title}")

ok(delete_execution_log.sync_detailed(log.id, client=client), "delete the execution log", HTTPStatus.NO_CONTENT)
