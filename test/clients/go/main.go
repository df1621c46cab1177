// A first integration, written against the Go client module (npm run clients), installed with
// `go get tolstoy.dev/client@v<version>` from the module proxy directory it was built into:
// go run . <base URL>
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	tolstoy "tolstoy.dev/client"
)

func check(condition bool, step string, detail ...any) {
	if !condition {
		fmt.Fprintln(os.Stderr, append([]any{"failed:", step}, detail...)...)
		os.Exit(1)
	}
}

func ok(status int, want int, step string, body []byte) {
	check(status == want, step, status, string(body))
	fmt.Println("ok", step)
}

func ptr[T any](value T) *T { return &value }

// A client that sends an API key with every request.
func withKey(key string) *tolstoy.ClientWithResponses {
	client, err := tolstoy.NewClientWithResponses(os.Args[1], tolstoy.WithAPIKey(key))
	check(err == nil, "create the client", err)
	return client
}

func main() {
	ctx := context.Background()
	// Signing up needs no credentials; every other call sends the owner's API key, set once.
	signup, err := tolstoy.NewClientWithResponses(os.Args[1])
	check(err == nil, "create the client", err)

	org, err := signup.CreateOrganizationWithResponse(ctx, tolstoy.OrganizationCreate{Name: "Go Co", Owner: &tolstoy.OwnerCreate{Email: "owner@go.example", Name: ptr("Owner")}})
	check(err == nil, "create an organization", err)
	ok(org.StatusCode(), http.StatusCreated, "create an organization and its first member", org.Body)
	client := withKey(org.JSON201.ApiKey.Key)

	tool, err := client.CreateToolWithResponse(ctx, &tolstoy.CreateToolParams{IdempotencyKey: ptr("go-slack-tool")}, tolstoy.ToolCreate{Name: "Slack API", BaseUrl: "https://api.slack.com", AuthType: ptr(tolstoy.AuthTypeBearer)})
	check(err == nil, "create a tool", err)
	ok(tool.StatusCode(), http.StatusCreated, "create a tool", tool.Body)
	again, err := client.CreateToolWithResponse(ctx, &tolstoy.CreateToolParams{IdempotencyKey: ptr("go-slack-tool")}, tolstoy.ToolCreate{Name: "Slack API", BaseUrl: "https://api.slack.com", AuthType: ptr(tolstoy.AuthTypeBearer)})
	check(err == nil, "retry the tool's creation", err)
	check(again.StatusCode() == http.StatusCreated && again.JSON201.Id == tool.JSON201.Id && again.HTTPResponse.Header.Get("Idempotent-Replayed") == "true", "a retried create replays the first", again.StatusCode(), string(again.Body))
	fmt.Println("ok a retried create replays the first")

	action, err := client.CreateActionWithResponse(ctx, nil, tolstoy.ActionCreate{ToolId: tool.JSON201.Id, Name: "Post a message", Key: "slack.post", Method: tolstoy.POST, Endpoint: "/chat.postMessage"})
	check(err == nil, "create an action", err)
	ok(action.StatusCode(), http.StatusCreated, "create an action", action.Body)

	steps := tolstoy.FlowSteps{{Key: "post", ActionId: &action.JSON201.Id, Inputs: &tolstoy.JsonObject{"channel": "#general"}}}
	flow, err := client.CreateFlowWithResponse(ctx, nil, tolstoy.FlowCreate{Name: "Announce", Steps: &steps})
	check(err == nil, "create a flow", err)
	ok(flow.StatusCode(), http.StatusCreated, "create a flow", flow.Body)

	log, err := client.CreateExecutionLogWithResponse(ctx, nil, tolstoy.ExecutionLogCreate{FlowId: flow.JSON201.Id, ExecutionId: "run-1", StepKey: "post", Status: tolstoy.ExecutionStatusCompleted, DurationMs: ptr(12)})
	check(err == nil, "create an execution log", err)
	ok(log.StatusCode(), http.StatusCreated, "create an execution log", log.Body)

	for _, name := range []string{"Second", "Third"} {
		_, err := client.CreateToolWithResponse(ctx, nil, tolstoy.ToolCreate{Name: name, BaseUrl: "https://example.com"})
		check(err == nil, "create another tool", err)
	}
	first, err := client.ListToolsWithResponse(ctx, &tolstoy.ListToolsParams{Limit: ptr(2)})
	check(err == nil, "list the first page", err)
	ok(first.StatusCode(), http.StatusOK, "list the first page", first.Body)
	check(len(first.JSON200.Items) == 2 && first.JSON200.NextCursor != nil, "a full first page and a cursor", string(first.Body))
	second, err := client.ListToolsWithResponse(ctx, &tolstoy.ListToolsParams{Limit: ptr(2), Cursor: first.JSON200.NextCursor})
	check(err == nil, "list the next page", err)
	ok(second.StatusCode(), http.StatusOK, "list the next page", second.Body)
	check(len(second.JSON200.Items) == 1 && second.JSON200.Items[0].Id == tool.JSON201.Id && second.JSON200.NextCursor == nil, "the last page", string(second.Body))

	renamed, err := client.UpdateFlowWithResponse(ctx, flow.JSON201.Id, &tolstoy.UpdateFlowParams{IfMatch: ptr(flow.HTTPResponse.Header.Get("ETag"))}, tolstoy.FlowUpdate{Name: ptr("Announce loudly")})
	check(err == nil, "update a flow", err)
	ok(renamed.StatusCode(), http.StatusOK, "update a flow", renamed.Body)
	check(renamed.JSON200.Version == 2, "the version counts the update", renamed.JSON200.Version)
	stale, err := client.UpdateFlowWithResponse(ctx, flow.JSON201.Id, &tolstoy.UpdateFlowParams{IfMatch: ptr(flow.HTTPResponse.Header.Get("ETag"))}, tolstoy.FlowUpdate{Name: ptr("Overwrite")})
	check(err == nil, "update with a stale tag", err)
	check(stale.StatusCode() == http.StatusPreconditionFailed && stale.ApplicationproblemJSON412 != nil, "a stale If-Match is refused", stale.StatusCode(), string(stale.Body))
	fmt.Println("ok a stale If-Match is refused")

	stranger, err := signup.CreateOrganizationWithResponse(ctx, tolstoy.OrganizationCreate{Name: "Elsewhere", Owner: &tolstoy.OwnerCreate{Email: "owner@elsewhere.example"}})
	check(err == nil, "create another organization", err)
	ok(stranger.StatusCode(), http.StatusCreated, "create another organization", stranger.Body)
	hidden, err := withKey(stranger.JSON201.ApiKey.Key).GetToolWithResponse(ctx, tool.JSON201.Id)
	check(err == nil, "read another tenant's tool", err)
	check(hidden.StatusCode() == http.StatusNotFound && hidden.ApplicationproblemJSON404 != nil, "another tenant gets a typed Problem", hidden.StatusCode(), string(hidden.Body))
	check(hidden.ApplicationproblemJSON404.Type == "/problems/not-found", "the problem's type", hidden.ApplicationproblemJSON404.Type)
	fmt.Println("ok another tenant gets a typed Problem:", hidden.ApplicationproblemJSON404.Title)

	deleted, err := client.DeleteExecutionLogWithResponse(ctx, log.JSON201.Id, nil)
	check(err == nil, "delete the execution log", err)
	ok(deleted.StatusCode(), http.StatusNoContent, "delete the execution log", deleted.Body)
}
