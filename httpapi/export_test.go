package httpapi

import "slices"

// DocumentedRoutes lists the routes the OpenAPI docs table describes, for
// the tests: OpenAPI() walks the route table, so a docs entry without a
// route would otherwise go unnoticed.
func DocumentedRoutes() []string {
	var out []string
	for k := range docs {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
