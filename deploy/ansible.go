package deploy

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// callbackFS holds MyT's stdout callback plugin for ansible-playbook.
//
//go:embed callback/myt.py
var callbackFS embed.FS

// ansible drives ansible-playbook in a bundle's ansible/ directory.
type ansible struct {
	path string
	dir  string
	env  []string
	log  *jobLog
}

// installCallback writes the callback plugin into dir and returns the
// environment that selects it.
func installCallback(dir string) (map[string]string, error) {
	b, err := callbackFS.ReadFile("callback/myt.py")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "myt.py"), b, 0o600); err != nil {
		return nil, err
	}
	return map[string]string{
		"ANSIBLE_CALLBACK_PLUGINS":      dir,
		"ANSIBLE_STDOUT_CALLBACK":       "myt",
		"ANSIBLE_LOAD_CALLBACK_VARS":    "false",
		"ANSIBLE_NOCOLOR":               "1",
		"ANSIBLE_FORCE_COLOR":           "0",
		"ANSIBLE_RETRY_FILES_ENABLED":   "false",
		"ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false",
	}, nil
}

// ansibleEvent is one line of the callback's output.
type ansibleEvent struct {
	Event   string                    `json:"event"`
	Name    string                    `json:"name"`
	Handler bool                      `json:"handler"`
	Status  string                    `json:"status"`
	Host    string                    `json:"host"`
	Task    string                    `json:"task"`
	Changed bool                      `json:"changed"`
	Msg     string                    `json:"msg"`
	Stdout  string                    `json:"stdout"`
	Stderr  string                    `json:"stderr"`
	Items   []string                  `json:"items"`
	Item    string                    `json:"item"`
	Diff    string                    `json:"diff"`
	Hosts   map[string]map[string]int `json:"hosts"`
}

// playResult is what a playbook run did.
type playResult struct {
	Tasks   int
	Changed int
	Failed  []string // "task: message" of each failure
	Recap   map[string]map[string]int
	// Slowest are the tasks that took longest, slowest first.
	Slowest []taskTime
}

// taskTime is how long one task took, from its start to its result.
type taskTime struct {
	Name string
	Took time.Duration
}

// slowTask is how long a task takes before its result line says so.
const slowTask = time.Second

// CountTasks lists the playbook's tasks (without running anything).
func (a *ansible) CountTasks(ctx context.Context, args ...string) (int, error) {
	n := 0
	var stderr []string
	err := run(ctx, command{
		Path: a.path, Args: append(append([]string{}, args...), "--list-tasks"), Dir: a.dir, Env: environ(a.env, map[string]string{"ANSIBLE_STDOUT_CALLBACK": "default"}),
		Line: func(stream, line string) {
			if stream == "err" {
				stderr = append(stderr, line)
				return
			}
			// Task lines are indented, "      role : name\tTAGS: [...]".
			if strings.HasPrefix(line, "      ") && strings.Contains(line, "TAGS:") {
				n++
			}
		},
	})
	if err != nil {
		for _, l := range stderr {
			a.log.Line(l)
		}
		return 0, err
	}
	return n, nil
}

// Playbook runs ansible-playbook with args; task reports each task start
// (its 1-based number and name).
func (a *ansible) Playbook(ctx context.Context, task func(n int, name string), args ...string) (*playResult, error) {
	res := &playResult{}
	var taskName string
	var taskStart time.Time
	var times []taskTime
	err := run(ctx, command{
		Path: a.path, Args: args, Dir: a.dir, Env: a.env,
		Line: func(stream, line string) {
			var e ansibleEvent
			if stream != "out" || !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil {
				if strings.TrimSpace(line) != "" {
					a.log.Line(line)
				}
				return
			}
			switch e.Event {
			case "play":
				a.log.Printf("PLAY %s", e.Name)
			case "task":
				res.Tasks++
				taskName, taskStart = e.Name, time.Now()
				a.log.Printf("TASK %s", e.Name)
				if task != nil {
					task(res.Tasks, e.Name)
				}
			case "result":
				line := fmt.Sprintf("  %s: %s", e.Status, e.Host)
				if took := time.Since(taskStart); e.Task == taskName && took >= slowTask {
					line += fmt.Sprintf(" (%v)", took.Round(100*time.Millisecond))
					times = append(times, taskTime{taskName, took})
				}
				if e.Msg != "" && e.Status != "ok" && e.Status != "skipped" {
					line += ": " + e.Msg
				}
				a.log.Line(line)
				if e.Diff != "" {
					a.log.Line("    " + strings.ReplaceAll(e.Diff, "\n", "\n    "))
				}
				if e.Changed {
					res.Changed++
				}
				if e.Status == "failed" || e.Status == "unreachable" {
					for _, s := range []string{e.Stdout, e.Stderr} {
						if s != "" {
							a.log.Line("    " + strings.ReplaceAll(s, "\n", "\n    "))
						}
					}
					for _, s := range e.Items {
						a.log.Line("    " + strings.ReplaceAll(s, "\n", "\n    "))
					}
					msg := e.Msg
					if msg == "" {
						msg = lastLine(e.Stderr)
					}
					res.Failed = append(res.Failed, fmt.Sprintf("%s: %s", e.Task, msg))
				}
			case "item":
				if e.Diff != "" {
					a.log.Printf("    %s: %s", e.Item, strings.ReplaceAll(e.Diff, "\n", "; "))
				}
			case "stats":
				res.Recap = e.Hosts
				for h, s := range e.Hosts {
					a.log.Printf("RECAP %s: ok=%d changed=%d unreachable=%d failed=%d skipped=%d", h, s["ok"], s["changed"], s["unreachable"], s["failures"], s["skipped"])
				}
			}
		},
	})
	slices.SortStableFunc(times, func(a, b taskTime) int { return cmp.Compare(b.Took, a.Took) })
	res.Slowest = times[:min(len(times), 5)]
	return res, err
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
