package device_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/device"
)

func TestParseCSV(t *testing.T) {
	ds, lines, err := device.ParseCSV([]byte("\xef\xbb\xbfname,description\nsensor-1,Kitchen\n\n sensor-2\n\"sensor-3\",\"Hall, upstairs\"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []myt.DeviceNew{{Name: "sensor-1", Description: "Kitchen"}, {Name: "sensor-2"}, {Name: "sensor-3", Description: "Hall, upstairs"}}
	if diff := cmp.Diff(want, ds); diff != "" {
		t.Errorf("devices (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{2, 4, 5}, lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name, in string
		want     []string // field errors, in order
	}{
		{"every bad line at once", "ok-1\nBad Name\nok-2,a,b\nok-1\nmyt-admin\nx/y\nok-3," + strings.Repeat("d", 201) + "\ntaken\n",
			[]string{
				`line 2: name "Bad Name": use 1 to 63`,
				`line 3: 3 columns`,
				`line 4: ok-1 is already on line 1`,
				`line 5: name "myt-admin": names starting with myt-`,
				`line 6: name "x/y": use 1 to 63`,
				`line 7: description: one line of at most 200 characters`,
				`line 8: taken: the platform already has a device of that name`,
			}},
		{"broken quoting", "a\n\"b\n", []string{"line 2: not CSV"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, _, err := device.ParseCSV([]byte(tc.in), func(n string) bool { return n == "taken" })
			if myt.ErrorCode(err) != myt.EINVALID || ds != nil {
				t.Fatalf("got %v, %v; want EINVALID and nothing", ds, err)
			}
			fs := myt.ErrorFields(err)
			if len(fs) != len(tc.want) {
				t.Fatalf("errors %v, want %d", fs, len(tc.want))
			}
			for i, f := range fs {
				if !strings.HasPrefix(f.String(), tc.want[i]) {
					t.Errorf("error %d = %q, want it to start with %q", i, f.String(), tc.want[i])
				}
			}
		})
	}
	if _, _, err := device.ParseCSV([]byte("name,description\n\n"), nil); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("empty file: %v", err)
	}
}
