package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/httpapi"
)

func newPlatformCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "platform",
		Aliases: []string{"platforms"},
		Short:   "Create and inspect your platforms",
	}
	cmd.AddCommand(newPlatformCreateCmd(), newPlatformListCmd(), newPlatformShowCmd(), newPlatformRmCmd(),
		newPlatformJobCmd(myt.JobDeploy, "Deploy a platform: make its infrastructure (clouds: plan, then approve) and install it"),
		newPlatformJobCmd(myt.JobUpdate, "Apply the platform's current design to where it runs"),
		newPlatformJobCmd(myt.JobDestroy, "Destroy a platform; its data is kept unless --delete-data"),
		newPlatformLogsCmd(), newPlatformStatusCmd())
	return cmd
}

func newPlatformCreateCmd() *cobra.Command {
	var file string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "create -f design.yaml",
		Short: "Create a platform from a design document (YAML or JSON; - for stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("-f is required: the design file (see the README for an example)")
			}
			var doc []byte
			var err error
			if file == "-" {
				doc, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), design.MaxDocumentBytes+1))
			} else {
				doc, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			// Check locally first: errors come without a round trip, and
			// name the file.
			d, err := design.Parse(doc)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			noteUncheckedHandler(cmd, d)
			c, err := apiClient()
			if err != nil {
				return err
			}
			if dryRun {
				if _, err := c.ValidateDesign(cmd.Context(), doc); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s is a valid design.\n", file)
				return nil
			}
			p, err := c.CreatePlatform(cmd.Context(), doc)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created platform %q (id %d, status %s).\n", p.Name, p.ID, p.Status)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "design document (YAML or JSON), - for stdin")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate only, create nothing")
	return cmd
}

func newPlatformListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List your platforms",
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
		ps, err := c.Platforms(cmd.Context())
		if err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(cmd.OutOrStdout(), ps)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tPROVIDER\tDATABASE\tUPDATED")
		for _, p := range ps {
			t := p.Design.Spec.Target
			where := t.Provider
			if t.Region != "" {
				where += "/" + t.Region
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Status, where, p.Design.Spec.Database.Kind, p.Updated.Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	}
	return cmd
}

// findPlatform resolves a name or id.
// platformClient is the API client and the platform ref names (a name or
// an id): how every command on one platform begins.
func platformClient(cmd *cobra.Command, ref string) (*httpapi.Client, *myt.Platform, error) {
	c, err := apiClient()
	if err != nil {
		return nil, nil, err
	}
	p, err := findPlatform(cmd, c, ref)
	return c, p, err
}

func findPlatform(cmd *cobra.Command, c *httpapi.Client, ref string) (*myt.Platform, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return c.Platform(cmd.Context(), id)
	}
	return c.PlatformByName(cmd.Context(), ref)
}

func newPlatformShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show NAME|ID",
		Short: "Show a platform: status and design",
		Args:  cobra.ExactArgs(1),
	}
	output := outputFlag(cmd, "table")
	cmd.Flags().Lookup("output").Usage = "output format: table, yaml (the design document) or json"
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "table", "yaml", "json"); err != nil {
			return err
		}
		_, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		switch *output {
		case "json":
			return printJSON(out, p)
		case "yaml":
			y, err := design.MarshalYAML(p.Design)
			if err != nil {
				return err
			}
			_, err = out.Write(y)
			return err
		}
		s := p.Design.Spec
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Name:\t%s\n", p.Name)
		fmt.Fprintf(tw, "ID:\t%d\n", p.ID)
		fmt.Fprintf(tw, "Status:\t%s\n", p.Status)
		fmt.Fprintf(tw, "Target:\t%s %s %s (credentials %q)\n", s.Target.Provider, s.Target.Region, s.Target.Size, s.Target.Credentials)
		fmt.Fprintf(tw, "Database:\t%s\n", s.Database.Kind)
		fmt.Fprintf(tw, "Device ports:\t%s\n", portList(s.Broker.Ports()))
		fmt.Fprintf(tw, "Revision:\t%d (updated %s)\n", p.Revision, p.Updated.Format("2006-01-02 15:04"))
		return tw.Flush()
	}
	return cmd
}

func newPlatformRmCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "rm NAME|ID [--yes]",
		Aliases: []string{"delete"},
		Short:   "Delete a platform that is not deployed (asks first unless --yes)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, p, err := platformClient(cmd, args[0])
			if err != nil {
				return err
			}
			if !yes {
				fmt.Fprintf(cmd.ErrOrStderr(), "Delete platform %q and its %d design revision(s)? Type its name to confirm: ", p.Name, p.Revision)
				answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(answer) != p.Name {
					fmt.Fprintln(cmd.ErrOrStderr())
					return myt.Errorf(myt.EINVALID, "Platform %q was not deleted: type its name at the prompt, or give --yes.", p.Name)
				}
			}
			if err := c.DeletePlatform(cmd.Context(), p.ID); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted platform %q.\n", p.Name)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
}

// portList writes ports as people do: "5671, 8883".
func portList(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}
