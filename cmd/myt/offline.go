package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/vault"
)

// lockDataDir takes the data dir's lock: `myt serve` holds it while it
// runs; commands that must not run beside it (key rotation) fail fast.
func lockDataDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("another myt (probably `myt serve`) is using %s: stop it first", dir)
		}
		return nil, err
	}
	return func() { unlockFile(f); f.Close() }, nil
}

// errLocked is lockFile's answer when another process holds the lock.
var errLocked = errors.New("locked by another process")

// offlineAdmin is the principal of commands run with direct access to the
// data dir: whoever can read it is the instance's owner anyway.
func offlineAdmin(ctx context.Context) context.Context {
	return myt.NewContextWithAuth(ctx, &myt.Auth{User: &myt.User{Username: "(offline)", Admin: true}})
}

func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage accounts directly in a data dir (for automation)",
	}
	var data, username string
	var passwordStdin, admin bool
	create := &cobra.Command{
		Use:   "create --data DIR --username NAME --password-stdin [--admin]",
		Short: "Create an account without a running server",
		Long: `Create an account directly in the data dir, for provisioning scripts:

  printf '%s' "$PASSWORD" | myt user create --data /var/lib/myt --username ada --password-stdin --admin

The first account is always an administrator.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !passwordStdin {
				return errors.New("give the password on stdin with --password-stdin (passwords are never taken as flags)")
			}
			if username == "" {
				return errors.New("--username is required")
			}
			password, err := readSecret(cmd, true, "", "password")
			if err != nil {
				return err
			}
			log, _ := newLogger(cmd.ErrOrStderr(), "text", "warn")
			db, err := openStore(cmd.Context(), data, log)
			if err != nil {
				return err
			}
			defer db.Close()
			u, err := sqlite.NewUserService(db).CreateUser(offlineAdmin(cmd.Context()), myt.UserCreate{Username: username, Password: password, Admin: admin})
			if err != nil {
				return err
			}
			role := "user"
			if u.Admin {
				role = "administrator"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created %s %q in %s.\n", role, u.Username, data)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&data, "data", defaultDataDir(), "data directory (env MYT_DATA)")
	f.StringVar(&username, "username", "", "user name")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	f.BoolVar(&admin, "admin", false, "make the user an administrator")
	cmd.AddCommand(create)
	return cmd
}

func newVaultCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vault",
		Short: "Server key operations",
	}
	var data, newKeyFile string
	rotate := &cobra.Command{
		Use:   "rotate-server-key --data DIR",
		Short: "Generate a new server key and re-seal every platform secret with it",
		Long: `Generate a new server key and re-seal every secret sealed with the old one,
in one transaction. Stop ` + "`myt serve`" + ` first. With the key in the data dir
(server.key), the file is replaced. With MYT_SERVER_KEY, the new key is
written to --new-key-file (0600): put it in MYT_SERVER_KEY before restarting.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			release, err := lockDataDir(data)
			if err != nil {
				return err
			}
			defer release()
			log, _ := newLogger(cmd.ErrOrStderr(), "text", "warn")
			fromEnv := os.Getenv(vault.ServerKeyEnv) != ""
			if fromEnv && newKeyFile == "" {
				return fmt.Errorf("the server key comes from %s: give --new-key-file for the new one", vault.ServerKeyEnv)
			}
			db, err := openStore(cmd.Context(), data, log)
			if err != nil {
				return err
			}
			defer db.Close()
			newKey := vault.NewKey()
			target := filepath.Join(data, vault.ServerKeyFile)
			pending := target + ".new"
			if fromEnv {
				pending = newKeyFile
			}
			// The new key is on disk before the database depends on it, so
			// a crash at any point leaves a key that opens the database.
			if err := vault.WriteKeyFile(pending, newKey); err != nil {
				return err
			}
			n, err := db.RotateServerKey(cmd.Context(), newKey)
			if err != nil {
				if !fromEnv {
					os.Remove(pending)
				}
				return err
			}
			if !fromEnv {
				if err := os.Rename(pending, target); err != nil {
					return fmt.Errorf("the database now uses the key in %s, but it could not be moved to %s: %w", pending, target, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Rotated the server key (fingerprint %s): %d secret(s) re-sealed; %s replaced.\n", vault.Fingerprint(newKey), n, target)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Rotated the server key (fingerprint %s): %d secret(s) re-sealed. Set %s to the contents of %s before restarting.\n", vault.Fingerprint(newKey), n, vault.ServerKeyEnv, pending)
			}
			return nil
		},
	}
	rotate.Flags().StringVar(&data, "data", defaultDataDir(), "data directory (env MYT_DATA)")
	rotate.Flags().StringVar(&newKeyFile, "new-key-file", "", "where to write the new key when the current one comes from "+vault.ServerKeyEnv)
	cmd.AddCommand(rotate)
	return cmd
}
