package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/myt-iot/myt"
)

// tofu drives OpenTofu or Terraform (the same CLI) in one module
// directory, with machine-readable output.
type tofu struct {
	path string
	dir  string
	env  []string
	log  *jobLog
}

// hostTypes and dataTypes are the resource types of the platform's
// machine and of its data volume, in every cloud module.
var (
	hostTypes = []string{"aws_instance", "openstack_compute_instance_v2", "azurerm_linux_virtual_machine", "google_compute_instance"}
	dataTypes = []string{"aws_ebs_volume", "openstack_blockstorage_volume_v3", "azurerm_managed_disk", "google_compute_disk"}
)

// uiMessage is one line of `tofu ... -json` (the machine-readable UI).
type uiMessage struct {
	Level      string `json:"@level"`
	Message    string `json:"@message"`
	Type       string `json:"type"`
	Diagnostic *struct {
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
		Detail   string `json:"detail"`
	} `json:"diagnostic"`
	Change *struct {
		Resource struct {
			Addr         string `json:"addr"`
			ResourceType string `json:"resource_type"`
		} `json:"resource"`
		Action string `json:"action"`
	} `json:"change"`
	Hook *struct {
		Resource struct {
			Addr string `json:"addr"`
		} `json:"resource"`
		Action string `json:"action"`
	} `json:"hook"`
	Changes *struct {
		Add       int    `json:"add"`
		Change    int    `json:"change"`
		Remove    int    `json:"remove"`
		Operation string `json:"operation"`
	} `json:"changes"`
}

// line runs one tofu command and hands each parsed JSON message of its
// stdout to on (nil: only logged). Lines that are not JSON are logged as
// they are.
func (t *tofu) exec(ctx context.Context, on func(uiMessage), args ...string) error {
	return run(ctx, command{
		Path: t.path, Args: args, Dir: t.dir, Env: t.env,
		Line: func(stream, line string) {
			var m uiMessage
			if stream == "out" && strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &m) == nil {
				t.logMessage(m)
				if on != nil {
					on(m)
				}
				return
			}
			t.log.Line(line)
		},
	})
}

func (t *tofu) logMessage(m uiMessage) {
	switch {
	case m.Type == "diagnostic" && m.Diagnostic != nil:
		t.log.Printf("%s: %s", m.Diagnostic.Severity, m.Diagnostic.Summary)
		if d := strings.TrimSpace(m.Diagnostic.Detail); d != "" {
			t.log.Line("  " + strings.ReplaceAll(d, "\n", "\n  "))
		}
	case m.Message != "":
		t.log.Line(m.Message)
	}
}

// Init runs init (providers from the registry, or the mirror that the
// CLI config names).
func (t *tofu) Init(ctx context.Context) error {
	return t.exec(ctx, nil, "init", "-input=false", "-no-color", "-reconfigure")
}

// Plan writes the plan to file and returns its summary. destroy plans
// the removal of everything.
func (t *tofu) Plan(ctx context.Context, file string, destroy bool) (*myt.Plan, error) {
	args := []string{"plan", "-input=false", "-json", "-lock-timeout=60s", "-out=" + file}
	if destroy {
		args = append(args, "-destroy")
	}
	byAddr := map[string]myt.PlanChange{}
	var summary *myt.Plan
	err := t.exec(ctx, func(m uiMessage) {
		switch {
		case m.Type == "planned_change" && m.Change != nil:
			c := myt.PlanChange{Address: m.Change.Resource.Addr, Type: m.Change.Resource.ResourceType, Action: m.Change.Action}
			c.Host = slices.Contains(hostTypes, c.Type)
			c.Data = slices.Contains(dataTypes, c.Type)
			byAddr[c.Address] = c
		case m.Type == "change_summary" && m.Changes != nil:
			summary = &myt.Plan{Add: m.Changes.Add, Change: m.Changes.Change, Destroy: m.Changes.Remove}
		}
	}, args...)
	if err != nil {
		return nil, err
	}
	if summary == nil {
		return nil, fmt.Errorf("%s plan gave no change summary", shortName(t.path))
	}
	summary.Changes = []myt.PlanChange{}
	for _, addr := range slices.Sorted(maps.Keys(byAddr)) {
		c := byAddr[addr]
		if c.Action == "noop" || c.Action == "read" {
			continue
		}
		summary.Changes = append(summary.Changes, c)
		gone := c.Action == "delete" || c.Action == "replace"
		summary.ReplacesHost = summary.ReplacesHost || c.Host && gone
		summary.DestroysData = summary.DestroysData || c.Data && gone
	}
	return summary, nil
}

// Apply applies a saved plan, reporting each finished resource to
// progress.
func (t *tofu) Apply(ctx context.Context, file string, progress func(addr, action string)) error {
	return t.exec(ctx, func(m uiMessage) {
		if m.Type == "apply_complete" && m.Hook != nil && progress != nil {
			progress(m.Hook.Resource.Addr, m.Hook.Action)
		}
	}, "apply", "-input=false", "-json", "-lock-timeout=60s", file)
}

// Output returns the root module's outputs as `output -json` prints them.
func (t *tofu) Output(ctx context.Context) (map[string]json.RawMessage, []byte, error) {
	var out bytes.Buffer
	err := run(ctx, command{
		Path: t.path, Args: []string{"output", "-json", "-no-color"}, Dir: t.dir, Env: t.env,
		Line: func(stream, line string) {
			if stream == "out" {
				out.WriteString(line)
				out.WriteByte('\n')
			} else {
				t.log.Line(line)
			}
		},
	})
	if err != nil {
		return nil, nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		return nil, nil, fmt.Errorf("read %s output: %w", shortName(t.path), err)
	}
	return m, out.Bytes(), nil
}

// StateList lists the resource addresses in the state.
func (t *tofu) StateList(ctx context.Context) ([]string, error) {
	var addrs []string
	err := run(ctx, command{
		Path: t.path, Args: []string{"state", "list"}, Dir: t.dir, Env: t.env,
		Line: func(stream, line string) {
			if stream == "out" && strings.TrimSpace(line) != "" {
				addrs = append(addrs, strings.TrimSpace(line))
			} else if stream == "err" {
				t.log.Line(line)
			}
		},
	})
	return addrs, err
}

// StateRm forgets addrs without touching the real resources.
func (t *tofu) StateRm(ctx context.Context, addrs ...string) error {
	return t.exec(ctx, nil, append([]string{"state", "rm", "-lock-timeout=60s"}, addrs...)...)
}

// outputString reads output name's value as a string.
func outputString(outs map[string]json.RawMessage, name string) (string, error) {
	raw, ok := outs[name]
	if !ok {
		return "", fmt.Errorf("the infrastructure has no output %q", name)
	}
	var o struct {
		Value any `json:"value"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", fmt.Errorf("output %s: %w", name, err)
	}
	s, ok := o.Value.(string)
	if !ok || s == "" {
		return "", fmt.Errorf("output %s is empty or not a string", name)
	}
	return s, nil
}
