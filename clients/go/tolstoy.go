// Package tolstoy is the Go client of the Tolstoy API. client.gen.go is generated from the API's
// contract by oapi-codegen; this file adds what every caller needs first: an API key.
package tolstoy

import (
	"context"
	"net/http"
)

// WithAPIKey sends key (tsk_…) as "Authorization: Bearer" with every request.
func WithAPIKey(key string) ClientOption {
	return WithRequestEditorFn(func(_ context.Context, request *http.Request) error {
		request.Header.Set("Authorization", "Bearer "+key)
		return nil
	})
}
