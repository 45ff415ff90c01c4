package render

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
)

// Mounts reads a rendered compose.yaml and says which files of the
// platform directory each service runs on: its bind mounts ("./x/y", as
// "x/y") and its secrets (as "secrets/NAME"). A container keeps the inode
// of a bind-mounted file, and Compose does not look inside files, so a
// service must be recreated when one of these changes; a service whose
// files are all unchanged is left running.
type Mounts struct {
	services []string
	uses     map[string][]string // service -> paths relative to the platform directory
}

// ParseMounts reads the bind mounts and secrets of every service of a
// rendered compose.yaml.
func ParseMounts(compose []byte) (*Mounts, error) {
	var doc struct {
		Services map[string]struct {
			Volumes []any `yaml:"volumes"`
			Secrets []any `yaml:"secrets"`
		} `yaml:"services"`
		Secrets map[string]struct {
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err := yaml.Unmarshal(compose, &doc); err != nil {
		return nil, fmt.Errorf("compose.yaml: %w", err)
	}
	m := &Mounts{uses: map[string][]string{}}
	for name, svc := range doc.Services {
		m.services = append(m.services, name)
		for _, v := range svc.Volumes {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("compose.yaml: service %s: only short volume syntax is understood, got %v", name, v)
			}
			src, _, _ := strings.Cut(s, ":")
			if rel, ok := strings.CutPrefix(src, "./"); ok {
				m.uses[name] = append(m.uses[name], path.Clean(rel))
			}
		}
		for _, s := range svc.Secrets {
			source := ""
			switch s := s.(type) {
			case string:
				source = s
			case map[string]any:
				source, _ = s["source"].(string)
			}
			f, ok := doc.Secrets[source]
			if !ok || !strings.HasPrefix(f.File, "./") {
				return nil, fmt.Errorf("compose.yaml: service %s: secret %q has no ./ file", name, source)
			}
			m.uses[name] = append(m.uses[name], path.Clean(strings.TrimPrefix(f.File, "./")))
		}
	}
	slices.Sort(m.services)
	return m, nil
}

// Services lists every service of the compose file, sorted.
func (m *Mounts) Services() []string { return slices.Clone(m.services) }

// Of lists the paths a service runs on, relative to the platform
// directory.
func (m *Mounts) Of(service string) []string { return slices.Clone(m.uses[service]) }

// Using returns the services (sorted, once each) that run on any of the
// given paths, relative to the platform directory: a file, or a directory
// ("worker" covers a mount of "worker/handler", and a mount of
// "worker/handler" covers "worker/handler/handler.py").
func (m *Mounts) Using(paths ...string) []string {
	var out []string
	for _, svc := range m.services {
		for _, u := range m.uses[svc] {
			if slices.ContainsFunc(paths, func(p string) bool { return within(p, u) || within(u, p) }) {
				out = append(out, svc)
				break
			}
		}
	}
	return out
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || strings.HasPrefix(p, dir+"/")
}
