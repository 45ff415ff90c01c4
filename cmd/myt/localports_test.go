package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/render"
)

// TestLocalPlatformLeavesTheServerPortFree: a local platform runs beside
// `myt serve` on one machine, so no port its compose file publishes may be
// the server's default one (the worker API used to be published on
// 127.0.0.1:8080, and the first local deploy beside a default server
// failed with "port is already allocated").
func TestLocalPlatformLeavesTheServerPortFree(t *testing.T) {
	_, serverPort, err := net.SplitHostPort(defaultAddr)
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []string{"1", "4"} {
		d, err := design.Parse([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: here}\nspec:\n  target: {provider: local}\n  database: {kind: mysql}\n  processing: {workers: " + workers + "}\n"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := render.Render(context.Background(), d, render.Options{Secrets: render.NewRandomSecrets()})
		if err != nil {
			t.Fatal(err)
		}
		var compose struct {
			Services map[string]struct {
				Ports []string `yaml:"ports"`
			} `yaml:"services"`
		}
		if err := yaml.Unmarshal(b.File("platform/compose.yaml").Data, &compose); err != nil {
			t.Fatal(err)
		}
		published := 0
		for name, svc := range compose.Services {
			for _, p := range svc.Ports {
				// [ip:]hostPort[-hostPortEnd]:containerPort
				parts := strings.Split(p, ":")
				if len(parts) < 2 {
					t.Fatalf("%s: port %q has no host port", name, p)
				}
				lo, hi, _ := strings.Cut(parts[len(parts)-2], "-")
				if hi == "" {
					hi = lo
				}
				published++
				if atoi(t, lo) <= atoi(t, serverPort) && atoi(t, serverPort) <= atoi(t, hi) {
					t.Errorf("%s workers: service %s publishes %q, which holds myt serve's default port %s", workers, name, p, serverPort)
				}
			}
		}
		if published == 0 {
			t.Fatal("the local platform publishes no port: the test reads the wrong file")
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}
