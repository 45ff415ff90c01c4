package main

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/pki"
	"github.com/myt-iot/myt/render"
)

// newRenderCmd is `myt render DESIGN -o DIR [--check]`: the offline
// renderer, the same one deploy jobs use.
func newRenderCmd() *cobra.Command {
	var (
		out, sshHost, sshUser, pubKeyFile, output string
		sshPort                                   int
		serverNames                               []string
		check                                     bool
	)
	cmd := &cobra.Command{
		Use:   "render DESIGN.yaml (-o DIR | --check)",
		Short: "Write the deployable bundle of a design (OpenTofu, Ansible, Compose)",
		Long: `Render writes every file a deployment uses into DIR, readable and usable
without MyT:

  infra/     OpenTofu/Terraform module + terraform.tfvars.json (clouds)
  ansible/   inventory, ansible.cfg, site.yml, roles (clouds and ssh)
  platform/  compose.yaml, RabbitMQ, worker, Grafana, TLS, secrets/ (0600)
  pki/       the platform CA (its key stays here, never on the host)
  ssh/       a generated SSH key pair (clouds, unless --ssh-public-key)
  secrets.d/ every generated secret by name (0600)

Running it again over the same DIR keeps its secrets and CA, so a deployed
platform keeps its passwords. --check then runs whichever of tofu/terraform,
ansible-playbook --syntax-check, ansible-lint and docker compose config is
installed, and reports each; without -o it renders into a temporary directory,
removed afterwards. init needs the providers: from a mirror named by
TF_CLI_CONFIG_FILE (or MYT_DEPLOY_CONFIG's tofuCLIConfig), or the public
registry; with neither it is skipped. See docs/bundle.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			temporary := false
			if out == "" {
				if !check {
					return myt.Errorf(myt.EINVALID, "Give the output directory with -o DIR (or --check alone to check the bundle in a temporary directory).")
				}
				tmp, err := os.MkdirTemp("", "myt-render-check-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				out, temporary = tmp, true
			}
			if err := checkOutput(output, "table", "json"); err != nil {
				return err
			}
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read design: %w", err)
			}
			d, err := design.Parse(raw)
			if err != nil {
				return err
			}
			noteUncheckedHandler(cmd, d)
			opts := render.Options{
				Secrets:     render.DirSecrets(out, render.NewRandomSecrets()),
				SSH:         render.SSHTarget{Host: sshHost, Port: sshPort, User: sshUser},
				ServerNames: serverNames,
			}
			if pubKeyFile != "" {
				b, err := os.ReadFile(pubKeyFile)
				if err != nil {
					return fmt.Errorf("read --ssh-public-key: %w", err)
				}
				opts.SSHPublicKey = string(b)
			}
			if opts.CA, err = loadBundleCA(out); err != nil {
				return err
			}
			// The earlier bundle's server certificate and names are kept:
			// devices keep connecting by every name it had, and a render
			// that changes nothing leaves the certificate as it was.
			saved, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(render.ServerNamesFile)))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("read the earlier bundle's server names: %w", err)
			}
			opts.ServerNames = render.ServerNames(append(render.ReadServerNames(saved), serverNames...))
			var previous *pki.Server
			if opts.CA != nil {
				previous = loadBundleServer(out)
				opts.Server = previous
			}
			b, err := render.Render(cmd.Context(), d, opts)
			if err != nil {
				return err
			}
			if err := b.WriteDir(out); err != nil {
				return err
			}
			summary := renderSummary{Dir: out, Temporary: temporary, Provider: d.Spec.Target.Provider, Files: len(b.Files),
				ServerNames: opts.ServerNames, CertificateExpires: b.Server.NotAfter()}
			if previous != nil && string(previous.CertPEM) != string(b.Server.CertPEM) {
				summary.CertificateRenewed = true
				summary.PreviousCertificateExpired = previous.NotAfter()
			}
			for _, part := range []string{"infra", "ansible", "platform", "pki", "ssh", "secrets.d"} {
				for _, f := range b.Files {
					if strings.HasPrefix(f.Path, part+"/") {
						summary.Parts = append(summary.Parts, part)
						break
					}
				}
			}
			if check {
				var opts render.CheckOptions
				if file := os.Getenv("MYT_DEPLOY_CONFIG"); file != "" {
					// The mirror deploy jobs use serves the check too.
					tools, _, _, err := loadDeployConfig(file)
					if err != nil {
						return err
					}
					opts.CLIConfig = tools.TofuCLIConfig
				}
				res, err := render.Check(cmd.Context(), out, opts)
				if err != nil {
					return err
				}
				summary.Checks = res
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				if err := printJSON(w, summary); err != nil {
					return err
				}
			} else if err := printRenderSummary(w, summary); err != nil {
				return err
			}
			for _, r := range summary.Checks {
				if r.Status == render.CheckFailed && temporary {
					return fmt.Errorf("%s failed on the bundle", r.Tool)
				}
				if r.Status == render.CheckFailed {
					return fmt.Errorf("bundle written to %s, but %s failed", out, r.Tool)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "directory to write the bundle into (created; existing secrets and CA are kept)")
	f.BoolVar(&check, "check", false, "run the installed tools (tofu/terraform, ansible-playbook, ansible-lint, docker compose) on the bundle")
	f.StringVar(&sshHost, "ssh-host", "", "host Ansible connects to (required for the ssh provider)")
	f.StringVar(&sshUser, "ssh-user", "", "SSH user (default: the image's user on clouds, your login user for ssh)")
	f.IntVar(&sshPort, "ssh-port", 22, "SSH port")
	f.StringVar(&pubKeyFile, "ssh-public-key", "", "OpenSSH public key file to authorize on cloud machines (default: generate a key pair into DIR/ssh)")
	f.StringSliceVar(&serverNames, "server-name", nil, "extra DNS name or IP for the TLS certificate (repeatable), e.g. the platform's public address")
	f.StringVar(&output, "output", "table", "output format: table or json")
	return cmd
}

type renderSummary struct {
	Dir string `json:"dir"`
	// Temporary: the bundle was written only to be checked, and removed.
	Temporary bool                 `json:"temporary,omitempty"`
	Provider  string               `json:"provider"`
	Files     int                  `json:"files"`
	Parts     []string             `json:"parts"`
	Checks    []render.CheckResult `json:"checks,omitempty"`
	// ServerNames are the extra names of the server certificate, kept
	// in pki/server-names for the next render.
	ServerNames []string `json:"serverNames,omitempty"`
	// CertificateExpires is the end of the server certificate; a
	// render within pki.RenewBefore of it issues a new one.
	CertificateExpires time.Time `json:"certificateExpires"`
	// CertificateRenewed: the earlier bundle's server certificate was
	// replaced (it was ending, or lacked a name); the platform must be
	// deployed again for the broker and Grafana to serve the new one.
	CertificateRenewed         bool      `json:"certificateRenewed,omitempty"`
	PreviousCertificateExpired time.Time `json:"previousCertificateExpires,omitzero"`
}

func printRenderSummary(w io.Writer, s renderSummary) error {
	if s.Temporary {
		fmt.Fprintf(w, "Rendered %d files for provider %s (%s) in a temporary directory, removed after the checks; -o DIR keeps them.\n", s.Files, s.Provider, strings.Join(s.Parts, ", "))
	} else {
		fmt.Fprintf(w, "Wrote %d files for provider %s to %s: %s\n", s.Files, s.Provider, s.Dir, strings.Join(s.Parts, ", "))
		fmt.Fprintf(w, "Secrets are in %s and %s (0600). Keep them out of git.\n",
			filepath.Join(s.Dir, "secrets.d"), filepath.Join(s.Dir, "platform", "secrets"))
	}
	fmt.Fprintf(w, "Server certificate valid until %s", s.CertificateExpires.UTC().Format("2006-01-02"))
	if len(s.ServerNames) > 0 {
		fmt.Fprintf(w, ", also for %s", strings.Join(s.ServerNames, ", "))
	}
	fmt.Fprintln(w, ".")
	if s.CertificateRenewed {
		fmt.Fprintf(w, "The earlier server certificate (until %s) was replaced: deploy the bundle again so the broker and Grafana serve the new one.\n",
			s.PreviousCertificateExpired.UTC().Format("2006-01-02"))
	}
	if len(s.Checks) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PART\tCHECK\tRESULT")
	for _, r := range s.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Part, r.Tool, r.Status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range s.Checks {
		if r.Status != render.CheckOK && r.Detail != "" {
			fmt.Fprintf(w, "\n%s (%s):\n%s", r.Tool, r.Status, indent(r.Detail))
		}
	}
	return nil
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// loadBundleServer returns the server certificate of an earlier bundle
// in dir (the leaf of platform/tls/server.crt with the broker's key), or
// nil when there is none or it does not read: render then issues one.
func loadBundleServer(dir string) *pki.Server {
	chain, err1 := os.ReadFile(filepath.Join(dir, "platform", "tls", "server.crt"))
	key, err2 := os.ReadFile(filepath.Join(dir, "platform", "secrets", "rabbitmq_tls_key"))
	if err1 != nil || err2 != nil {
		return nil
	}
	leaf, _ := pem.Decode(chain)
	if leaf == nil {
		return nil
	}
	return &pki.Server{CertPEM: pem.EncodeToMemory(leaf), KeyPEM: key}
}

// loadBundleCA returns the CA of an earlier bundle in dir, or nil.
func loadBundleCA(dir string) (*pki.CA, error) {
	crt, err1 := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
	key, err2 := os.ReadFile(filepath.Join(dir, "pki", "ca.key"))
	if errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
		return nil, nil
	}
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("read the earlier bundle's CA in %s: %w", dir, errors.Join(err1, err2))
	}
	ca, err := pki.LoadCA(crt, key)
	if err != nil {
		return nil, fmt.Errorf("earlier bundle's CA in %s: %w", dir, err)
	}
	return ca, nil
}
