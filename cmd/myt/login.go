package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/httpapi"
)

func newLoginCmd() *cobra.Command {
	var server, username, tokenName string
	var passwordStdin, setup bool
	cmd := &cobra.Command{
		Use:   "login --server URL --username NAME --password-stdin",
		Short: "Sign in to a MyT server and store an API token for the CLI",
		Long: `Sign in and store a new API token in $MYT_CONFIG (default
$XDG_CONFIG_HOME/myt/config.json, mode 0600). The password is read from
stdin, never from a flag:

  printf '%s' "$PASSWORD" | myt login --server http://127.0.0.1:8080 --username ada --password-stdin

With --setup, creates the first (administrator) account of a new server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !passwordStdin {
				return errors.New("give the password on stdin with --password-stdin (passwords are never taken as flags)")
			}
			if server == "" {
				server = os.Getenv("MYT_SERVER")
			}
			if server == "" || username == "" {
				return errors.New("--server and --username are required")
			}
			password, err := readSecret(cmd, true, "", "password")
			if err != nil {
				return err
			}
			if tokenName == "" {
				host, _ := os.Hostname()
				tokenName = "myt CLI on " + host
			}
			c := httpapi.NewClient(server, "")
			login := c.Login
			if setup {
				login = c.Setup
			}
			res, err := login(cmd.Context(), username, password, tokenName)
			if err != nil {
				return err
			}
			cfg, path, err := loadCLIConfig()
			if err != nil {
				return err
			}
			cfg.Server, cfg.Token = c.BaseURL, res.Token
			if err := saveCLIConfig(path, cfg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s; token %q saved in %s\n", c.BaseURL, res.User.Username, res.Session.Name, path)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "MyT server URL, e.g. http://127.0.0.1:8080 (env MYT_SERVER)")
	f.StringVar(&username, "username", "", "your user name")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	f.StringVar(&tokenName, "token-name", "", "name of the API token to create (default: myt CLI on HOST)")
	f.BoolVar(&setup, "setup", false, "create the first administrator account of a new server")
	return cmd
}

func newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the stored API token and forget it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, path, err := loadCLIConfig()
			if err != nil {
				return err
			}
			if cfg.Token == "" {
				return errors.New("not logged in")
			}
			c := httpapi.NewClient(cfg.Server, cfg.Token)
			if err := c.Logout(cmd.Context()); err != nil && myt.ErrorCode(err) != myt.EUNAUTHORIZED {
				return err // keep the token: it is still valid on the server
			}
			cfg.Token = ""
			if err := saveCLIConfig(path, cfg); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Logged out; the token is revoked.")
			return nil
		},
	}
}
