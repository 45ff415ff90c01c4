package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt/deploy"
)

func newDoctorCmd() *cobra.Command {
	var deployConfig string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the tools deploy jobs run (tofu/terraform, ansible, docker, compose) and say how to install what is missing",
		Args:  cobra.NoArgs,
	}
	output := outputFlag(cmd, "table")
	cmd.Flags().StringVar(&deployConfig, "deploy-config", "", "the server's deploy config (env MYT_DEPLOY_CONFIG)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output, "table", "json"); err != nil {
			return err
		}
		if deployConfig == "" {
			deployConfig = envOr("MYT_DEPLOY_CONFIG", "")
		}
		tools, _, _, err := loadDeployConfig(deployConfig)
		if err != nil {
			return err
		}
		checks := deploy.Doctor(cmd.Context(), tools, "")
		out := cmd.OutOrStdout()
		if *output == "json" {
			if err := printJSON(out, checks); err != nil {
				return err
			}
		} else {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TOOL\tSTATUS\tVERSION\tNEEDED FOR\tPATH")
			for _, c := range checks {
				st := "ok"
				if !c.OK {
					st = "MISSING"
					if c.Path != "" {
						st = "TOO OLD"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Tool, st, c.Version, c.Needed, c.Path)
			}
			tw.Flush()
			for _, c := range checks {
				if !c.OK {
					fmt.Fprintf(out, "\n%s: %s\n  fix: %s\n", c.Tool, c.Problem, c.Fix)
				}
			}
		}
		for _, c := range checks {
			if !c.OK {
				return errors.New("some tools are missing or too old (see above); deploys to the targets that need them will fail")
			}
		}
		return nil
	}
	return cmd
}
