package main

import (
	"slices"
	"testing"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/credential"
)

// flagErrors names the flag (or the secret's input) a CLI user typed.
func TestFlagErrors(t *testing.T) {
	for _, c := range []struct {
		kind   string
		fields []string
		want   []string
	}{
		{"aws", []string{"name", "access_key_id", "secret_access_key"},
			[]string{"--name", "--access-key-id", "secret_access_key (--secret-stdin/--secret-file)"}},
		{"ssh", []string{"host", "private_key"},
			[]string{"--host", "private_key (--secret-stdin/--secret-file)"}},
	} {
		k, ok := credential.Lookup(c.kind)
		if !ok {
			t.Fatalf("no kind %s", c.kind)
		}
		in := &myt.Error{Code: myt.EINVALID, Message: "The credential is not valid."}
		for _, f := range c.fields {
			in.Fields = append(in.Fields, myt.FieldError{Field: f, Message: "wrong"})
		}
		out := flagErrors(k, in)
		var got []string
		for _, f := range myt.ErrorFields(out) {
			got = append(got, f.Field)
		}
		if !slices.Equal(got, c.want) || myt.ErrorCode(out) != myt.EINVALID || myt.ErrorMessage(out) != in.Message {
			t.Errorf("%s: fields %v, want %v (code %s, message %q)", c.kind, got, c.want, myt.ErrorCode(out), myt.ErrorMessage(out))
		}
	}
}
