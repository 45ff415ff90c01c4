package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/credential"
	"github.com/myt-iot/myt/httpapi"
)

func newCredsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "creds",
		Aliases: []string{"credentials"},
		Short:   "Manage your cloud and server credentials",
	}
	add := &cobra.Command{
		Use:   "add KIND",
		Short: "Save a credential (" + strings.Join(credential.Names(), ", ") + ")",
	}
	for _, k := range credential.Kinds {
		add.AddCommand(newCredsAddKindCmd(k))
	}
	cmd.AddCommand(add, newCredsListCmd(), newCredsRmCmd())
	return cmd
}

// flagName turns a field name (access_key_id) into a flag (access-key-id).
func flagName(field string) string { return strings.ReplaceAll(field, "_", "-") }

// newCredsAddKindCmd builds `myt creds add KIND` from the kind's fields:
// public fields become flags; the secret field comes only from stdin or a
// file.
func newCredsAddKindCmd(k credential.Kind) *cobra.Command {
	var name, secretFile string
	var secretStdin bool
	public := map[string]*string{}
	var secretField credential.Field
	for _, f := range k.Fields {
		if f.Secret {
			secretField = f
		}
	}
	long := fmt.Sprintf("Save %s credential. The %s is read from stdin (--secret-stdin) or a file (--secret-file), never from a flag.", withArticle(k.Label), strings.ToLower(secretField.Label))
	if k.Name == "ssh" {
		long += "\nWithout a private key, MyT generates an ed25519 key pair and prints the public key to install in ~/.ssh/authorized_keys on the server."
	}
	cmd := &cobra.Command{
		Use:   k.Name + " --name NAME [flags]",
		Short: "Save a " + k.Label + " credential",
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := readSecret(cmd, secretStdin, secretFile, strings.ToLower(secretField.Label))
			if err != nil {
				return err
			}
			req := httpapi.CredentialRequest{Name: name, Kind: k.Name, Public: map[string]string{}, Secret: map[string]string{}}
			for field, v := range public {
				if *v != "" {
					req.Public[field] = *v
				}
			}
			if secret != "" {
				req.Secret[secretField.Name] = secret
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			cred, err := c.CreateCredential(cmd.Context(), req)
			if err != nil {
				return flagErrors(k, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Saved %s credential %q.\n", cred.Kind, cred.Name)
			if pk := cred.Public["public_key"]; k.Name == "ssh" && secret == "" && pk != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "Install this public key for %s@%s (append it to ~/.ssh/authorized_keys):\n%s\n", cred.Public["user"], cred.Public["host"], pk)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "a name for this credential, used by designs (spec.target.credentials)")
	for _, f := range k.Fields {
		if f.Secret {
			continue
		}
		v := new(string)
		public[f.Name] = v
		usage := f.Label
		if f.Help != "" {
			usage += ". " + f.Help
		}
		if f.Optional {
			usage += " (optional)"
		}
		fl.StringVar(v, flagName(f.Name), f.Default, usage)
	}
	fl.BoolVar(&secretStdin, "secret-stdin", false, "read the "+strings.ToLower(secretField.Label)+" from stdin")
	fl.StringVar(&secretFile, "secret-file", "", "read the "+strings.ToLower(secretField.Label)+" from this file")
	return cmd
}

// flagErrors rewrites field names in a validation error of a credential
// of kind k to the flags a CLI user typed.
func flagErrors(k credential.Kind, err error) error {
	fields := myt.ErrorFields(err)
	if len(fields) == 0 {
		return err
	}
	out := make([]myt.FieldError, len(fields))
	for i, f := range fields {
		out[i] = f
		if f.Field == "name" {
			out[i].Field = "--name"
			continue
		}
		isSecret := false
		for _, kf := range k.Fields {
			if kf.Name == f.Field && kf.Secret {
				isSecret = true
			}
		}
		if isSecret {
			out[i].Field = f.Field + " (--secret-stdin/--secret-file)"
		} else {
			out[i].Field = "--" + flagName(f.Field)
		}
	}
	return &myt.Error{Code: myt.ErrorCode(err), Message: myt.ErrorMessage(err), Fields: out}
}

func newCredsListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List your credentials (secrets masked)",
		Args:    cobra.NoArgs,
	}
	output := outputFlag(cmd, "table")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output, "table", "json"); err != nil {
			return err
		}
		c, err := apiClient()
		if err != nil {
			return err
		}
		cs, err := c.Credentials(cmd.Context())
		if err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(cmd.OutOrStdout(), cs)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tKIND\tDETAILS\tSECRET\tCREATED")
		for _, cr := range cs {
			secret := strings.Join(sortedValues(cr.Masked), " ")
			if cr.Locked {
				secret = "LOCKED: enter again (password was reset)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", cr.ID, cr.Name, cr.Kind, details(cr.Public), secret, cr.Created.Format("2006-01-02"))
		}
		return tw.Flush()
	}
	return cmd
}

func details(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "public_key" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}

func sortedValues(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

func newCredsRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME|ID",
		Aliases: []string{"delete"},
		Short:   "Delete a credential that no platform uses",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			cs, err := c.Credentials(cmd.Context())
			if err != nil {
				return err
			}
			for _, cr := range cs {
				if cr.Name == args[0] || strconv.FormatInt(cr.ID, 10) == args[0] {
					if err := c.DeleteCredential(cmd.Context(), cr.ID); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted credential %q.\n", cr.Name)
					return nil
				}
			}
			return myt.Errorf(myt.ENOTFOUND, "You have no credential %q (see `myt creds list`).", args[0])
		},
	}
}

// withArticle puts "a" or "an" before s, by its first letter: "an Amazon
// Web Services", "a Google Cloud".
func withArticle(s string) string {
	if s != "" && strings.ContainsRune("AEIOUaeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}
