"""A first integration, written against the Python client that openapi-python-client generates
from the contract (npm run clients): python test/clients/python/scenario.py <base URL>"""

import sys
from http import HTTPStatus

from tolstoy_client import Client
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
    FlowStep,
    FlowUpdate,
    HttpMethod,
    JsonObject,
    OrganizationCreate,
    Problem,
    ToolCreate,
    UserCreate,
)


def ok(response, step, status=HTTPStatus.OK):
    assert response.status_code == status, f"{step}: {response.status_code} {response.content!r}"
    print(f"ok {step}")
    return response.parsed


client = Client(base_url=sys.argv[1], raise_on_unexpected_status=True)

organization = ok(
    create_organization.sync_detailed(client=client, body=OrganizationCreate(name="Python Co", owner=UserCreate(email="owner@py.example", name="Owner"))),
    "create an organization and its first member",
    HTTPStatus.CREATED,
)
# The generated client sends header parameters as they are given, and httpx takes text only.
tenant = {"x_org_id": str(organization.id), "x_user_id": str(organization.owner.id)}

tool = ok(
    create_tool.sync_detailed(client=client, body=ToolCreate(name="Slack API", base_url="https://api.slack.com", auth_type=AuthType.BEARER), **tenant),
    "create a tool",
    HTTPStatus.CREATED,
)
action = ok(
    create_action.sync_detailed(
        client=client,
        body=ActionCreate(tool_id=tool.id, name="Post a message", key="slack.post", method=HttpMethod.POST, endpoint="/chat.postMessage"),
        **tenant,
    ),
    "create an action",
    HTTPStatus.CREATED,
)
inputs = JsonObject.from_dict({"channel": "#general"})
flow = ok(
    create_flow.sync_detailed(client=client, body=FlowCreate(name="Announce", steps=[FlowStep(key="post", action_id=action.id, inputs=inputs)]), **tenant),
    "create a flow",
    HTTPStatus.CREATED,
)
log = ok(
    create_execution_log.sync_detailed(
        client=client,
        body=ExecutionLogCreate(flow_id=flow.id, execution_id="run-1", step_key="post", status=ExecutionStatus.COMPLETED, duration_ms=12),
        **tenant,
    ),
    "create an execution log",
    HTTPStatus.CREATED,
)

for name in ("Second", "Third"):
    create_tool.sync_detailed(client=client, body=ToolCreate(name=name, base_url="https://example.com"), **tenant)
first = ok(list_tools.sync_detailed(client=client, limit=2, **tenant), "list the first page")
assert len(first.items) == 2 and first.next_cursor
second = ok(list_tools.sync_detailed(client=client, limit=2, cursor=first.next_cursor, **tenant), "list the next page")
assert [item.id for item in second.items] == [tool.id] and second.next_cursor is None

renamed = ok(update_flow.sync_detailed(flow.id, client=client, body=FlowUpdate(name="Announce loudly"), **tenant), "update a flow")
assert renamed.version == 2

stranger = ok(
    create_organization.sync_detailed(client=client, body=OrganizationCreate(name="Elsewhere", owner=UserCreate(email="owner@elsewhere.example"))),
    "create another organization",
    HTTPStatus.CREATED,
)
hidden = get_tool.sync_detailed(tool.id, client=client, x_org_id=str(stranger.id), x_user_id=str(stranger.owner.id))
assert hidden.status_code == HTTPStatus.NOT_FOUND and isinstance(hidden.parsed, Problem), hidden
assert hidden.parsed.type_ == "https://tolstoy.dev/problems/not-found"
print(f"ok another tenant gets a typed Problem: {hidden.parsed.title}")

ok(delete_execution_log.sync_detailed(log.id, client=client, **tenant), "delete the execution log", HTTPStatus.NO_CONTENT)
