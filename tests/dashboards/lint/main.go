// Schema check of a Grafana dashboard JSON: strict decoding into the typed dashboard of
// github.com/grafana/grafana-foundation-sdk (Grafana's generated schema types; unknown fields,
// wrong types and missing required fields fail, panel options and Prometheus queries are
// decoded by their plugin's own types), then the SDK's Validate().
//
// Grafana's dashboard linter (github.com/grafana/dashboard-linter) is not served by the module
// proxy this project can reach; the lint rules of our own live in tests/dashboards/check.py.
//
// Usage: go run . DASHBOARD.json   (prints one line per problem, exits 1 on any)
package main

import (
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lint DASHBOARD.json")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	var d dashboard.Dashboard
	// The SDK returns its error list as an `error` even when the list is empty.
	if err := noErrors(d.UnmarshalJSONStrict(raw)); err != nil {
		fmt.Printf("strict decode: %v\n", err)
		os.Exit(1)
	}
	if err := noErrors(d.Validate()); err != nil {
		fmt.Printf("validate: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("dashboard %q: %d panels decode strictly and validate\n", *d.Title, len(d.Panels))
}

// noErrors maps an empty cog.BuildErrors (a nil slice inside a non-nil error) to nil.
func noErrors(err error) error {
	if list, ok := err.(cog.BuildErrors); ok && len(list) == 0 {
		return nil
	}
	return err
}
