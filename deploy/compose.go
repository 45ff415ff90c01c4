package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// service is one container of a compose project, as `docker compose ps
// --all --format json` reports it.
type service struct {
	Service  string `json:"Service"`
	Name     string `json:"Name"`
	State    string `json:"State"`
	Health   string `json:"Health"`
	ExitCode int    `json:"ExitCode"`
}

// healthy reports whether the container runs and, if it has a health
// check, passes it.
func (s service) healthy() bool {
	return s.State == "running" && (s.Health == "" || s.Health == "healthy")
}

func (s service) String() string {
	st := s.State
	if s.Health != "" {
		st += " (" + s.Health + ")"
	}
	if s.State == "exited" {
		st += fmt.Sprintf(", exit code %d", s.ExitCode)
	}
	return s.Service + ": " + st
}

// parsePS reads `docker compose ps --format json`: one JSON object per
// line (Compose 2.21 and later) or one array (earlier 2.x).
func parsePS(out string) ([]service, error) {
	out = strings.TrimSpace(out)
	var all []service
	if strings.HasPrefix(out, "[") {
		if err := json.Unmarshal([]byte(out), &all); err != nil {
			return nil, fmt.Errorf("read compose ps: %w", err)
		}
	} else {
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			var s service
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				return nil, fmt.Errorf("read compose ps: %w", err)
			}
			all = append(all, s)
		}
	}
	slices.SortFunc(all, func(a, b service) int { return strings.Compare(a.Name, b.Name) })
	return all, nil
}

// unhealthy returns the services of want (all of them when want is nil)
// that are missing or not healthy, described.
func unhealthy(all []service, want []string) (bad []string, badServices []string) {
	seen := map[string]bool{}
	for _, s := range all {
		seen[s.Service] = true
		if (want == nil || slices.Contains(want, s.Service)) && !s.healthy() {
			bad = append(bad, s.String())
			if !slices.Contains(badServices, s.Service) {
				badServices = append(badServices, s.Service)
			}
		}
	}
	for _, w := range want {
		if !seen[w] {
			bad = append(bad, w+": no container")
			badServices = append(badServices, w)
		}
	}
	return bad, badServices
}
