package myt

import "net/http"

// errorStatus maps every error code to its HTTP status: the one place they
// are mapped, for the JSON API and the web UI alike. Its order is the order
// ErrorCodes lists them in.
var errorStatus = []struct {
	code   string
	status int
}{
	{EINVALID, http.StatusBadRequest},
	{ENOTFOUND, http.StatusNotFound},
	{ECONFLICT, http.StatusConflict},
	{EUNAUTHORIZED, http.StatusUnauthorized},
	{EFORBIDDEN, http.StatusForbidden},
	{ETOOMANY, http.StatusTooManyRequests},
	{ETOOLARGE, http.StatusRequestEntityTooLarge},
	{EINTERNAL, http.StatusInternalServerError},
}

// HTTPStatus returns the HTTP status for an error code; an unknown code
// (or "") is an internal error, 500.
func HTTPStatus(code string) int {
	for _, e := range errorStatus {
		if e.code == code {
			return e.status
		}
	}
	return http.StatusInternalServerError
}

// ErrorCodes lists every error code, each of which HTTPStatus maps.
func ErrorCodes() []string {
	codes := make([]string, len(errorStatus))
	for i, e := range errorStatus {
		codes[i] = e.code
	}
	return codes
}
