package main

import (
	"errors"
	"testing"

	"github.com/myt-iot/myt"
)

func TestOneLine(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errors.New("plain"), "plain"},
		{&myt.Error{Code: myt.EINVALID, Message: "The platform design is not valid.", Fields: []myt.FieldError{
			{Field: "spec.target.provider", Message: `"awz" given; allowed: aws, local`},
			{Field: "metadata.name", Message: "required"},
		}}, `The platform design is not valid: spec.target.provider: "awz" given; allowed: aws, local; metadata.name: required`},
		{errors.New("wrapped:\n\tdetail"), "wrapped: detail"},
	} {
		if got := oneLine(c.err); got != c.want {
			t.Errorf("oneLine(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}
