package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt/httpapi"
	"github.com/myt-iot/myt/internal/atomicfile"
)

// cliConfig is what `myt login` stores: the server and an API token. The
// file is 0600 in a 0700 directory.
type cliConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// configPath is $MYT_CONFIG, else $XDG_CONFIG_HOME/myt/config.json, else
// ~/.config/myt/config.json.
func configPath() (string, error) {
	if v := os.Getenv("MYT_CONFIG"); v != "" {
		return v, nil
	}
	if v := os.Getenv("XDG_CONFIG_HOME"); v != "" {
		return filepath.Join(v, "myt", "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", errors.New("cannot find your home directory: set MYT_CONFIG")
	}
	return filepath.Join(home, ".config", "myt", "config.json"), nil
}

func loadCLIConfig() (*cliConfig, string, error) {
	path, err := configPath()
	if err != nil {
		return nil, "", err
	}
	var cfg cliConfig
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &cfg, path, nil
	} else if err != nil {
		return nil, path, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, path, fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	return &cfg, path, nil
}

func saveCLIConfig(path string, cfg *cliConfig) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// apiClient returns a client for the configured server: MYT_SERVER and
// MYT_TOKEN override the stored login.
func apiClient() (*httpapi.Client, error) {
	cfg, _, err := loadCLIConfig()
	if err != nil {
		return nil, err
	}
	server, token := cfg.Server, cfg.Token
	if v := os.Getenv("MYT_SERVER"); v != "" {
		server = v
	}
	if v := os.Getenv("MYT_TOKEN"); v != "" {
		token = v
	}
	if server == "" {
		return nil, errors.New("no MyT server: run `myt login --server URL ...` or set MYT_SERVER")
	}
	if token == "" {
		return nil, errors.New("not logged in: run `myt login` or set MYT_TOKEN")
	}
	return httpapi.NewClient(server, token), nil
}

// readSecret reads a secret from stdin or a file, trimming one trailing
// newline; never from a flag, so it stays out of argv and shell history.
func readSecret(cmd *cobra.Command, fromStdin bool, file, what string) (string, error) {
	var b []byte
	var err error
	switch {
	case fromStdin && file != "":
		return "", fmt.Errorf("give the %s on stdin or in a file, not both", what)
	case fromStdin:
		b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	case file != "":
		b, err = os.ReadFile(file)
	default:
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	s := string(b)
	if strings.Count(strings.TrimRight(s, "\r\n"), "\n") == 0 {
		s = strings.TrimRight(s, "\r\n") // a one-line secret: drop the newline echo adds
	}
	return s, nil
}

// outputFlag adds --output to a listing command.
func outputFlag(cmd *cobra.Command, def string) *string {
	out := new(string)
	cmd.Flags().StringVarP(out, "output", "o", def, "output format: table or json")
	return out
}

func checkOutput(o string, allowed ...string) error {
	for _, a := range allowed {
		if o == a {
			return nil
		}
	}
	return fmt.Errorf("--output %q: want %s", o, strings.Join(allowed, " or "))
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
