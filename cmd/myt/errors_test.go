package main

import (
	"errors"
	"testing"

	"github.com/myt-iot/myt"
)

// TestErrorText: several problems are several lines, never joined by ";".
func TestErrorText(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errors.New("plain"), "plain"},
		{&myt.Error{Code: myt.EINVALID, Message: "The platform design is not valid.", Fields: []myt.FieldError{
			{Field: "spec.target.provider", Message: `"awz" given; allowed: aws, local`},
			{Field: "metadata.name", Message: "required"},
		}}, "The platform design is not valid.\n  spec.target.provider: \"awz\" given; allowed: aws, local\n  metadata.name: required"},
		{errors.New("wrapped:\n\tdetail\n"), "wrapped:\n\tdetail"},
	} {
		if got := errorText(c.err); got != c.want {
			t.Errorf("errorText(%q) =\n%s\nwant\n%s", c.err, got, c.want)
		}
	}
}
