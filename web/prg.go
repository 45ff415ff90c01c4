package web

import (
	"net/http"
	"net/url"
	"strings"
)

// actionPages maps the URL of each POST-only action to the page it acts
// on. Forms that fail re-render at the action's URL, and the reveal
// answers there; reloading such a page later, or opening it from the
// history, is a GET, which goes back to that page instead of "There is no
// page at this address".
var actionPages = []struct{ action, page string }{
	{"/logout", "/"},
	{"/platforms/{id}/reveal", "/platforms/{id}"},
	{"/platforms/{id}/alerts/channels", "/platforms/{id}/alerts"},
	{"/platforms/{id}/alerts/channels/{channel}/test", "/platforms/{id}/alerts"},
	{"/platforms/{id}/alerts/channels/{channel}/delete", "/platforms/{id}/alerts"},
	{"/platforms/{id}/alerts/rules/{rule}", "/platforms/{id}/alerts"},
	{"/platforms/{id}/devices/import", "/platforms/{id}/devices"},
	{"/platforms/{id}/devices/{name}/revoke", "/platforms/{id}/devices"},
	{"/jobs/{id}/approve", "/jobs/{id}"},
	{"/jobs/{id}/cancel", "/jobs/{id}"},
	{"/credentials/{id}/delete", "/credentials/{id}"},
	{"/tokens/{id}/revoke", "/tokens"},
	{"/account/password", "/account"},
	{"/account/lost-credentials", "/account"},
	{"/admin/users/{id}/disable", "/admin/users"},
	{"/admin/users/{id}/enable", "/admin/users"},
	{"/admin/invites", "/admin/users"},
	{"/admin/invites/{id}/delete", "/admin/users"},
	{"/admin/settings", "/admin/users"},
}

// routeActionPages registers a GET for every POST-only action that
// redirects (303) to its page.
func routeActionPages(mux *http.ServeMux) {
	for _, a := range actionPages {
		page := a.page
		mux.HandleFunc("GET "+a.action, func(w http.ResponseWriter, r *http.Request) {
			to := strings.ReplaceAll(page, "{id}", url.PathEscape(r.PathValue("id")))
			http.Redirect(w, r, to, http.StatusSeeOther)
		})
	}
}
