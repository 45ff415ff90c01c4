package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/diff"
)

// Day-2 code commands: push, history, rollback (against a MyT server).

func newCodePushCmd() *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "push NAME|ID handler.py",
		Short: "Publish a new handler to a running platform (hot swap, nothing lost)",
		Long: `Publish handler.py to a running platform: a publish job swaps it into every
worker between batches (no message lost or processed twice) and writes it to
the host, so restarted workers run it too. A handler the worker cannot load is
refused, and the old one keeps running. Every published version is kept:
see 'myt code history' and 'myt code rollback'.`,
		Args: cobra.ExactArgs(2),
	}
	output := outputFlag(cmd, "text")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the job and return")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "text", "json"); err != nil {
			return err
		}
		code, err := os.ReadFile(args[1])
		if err != nil {
			return fmt.Errorf("handler: %w", err)
		}
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		j, err := c.PublishCode(cmd.Context(), p.ID, string(code))
		if err != nil {
			return err
		}
		return followStartedJob(cmd, c, p, j, detach, *output)
	}
	return cmd
}

func newCodeRollbackCmd() *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "rollback NAME|ID VERSION",
		Short: "Publish an earlier handler version again",
		Args:  cobra.ExactArgs(2),
	}
	output := outputFlag(cmd, "text")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the job and return")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "text", "json"); err != nil {
			return err
		}
		v, err := strconv.Atoi(strings.TrimPrefix(args[1], "v"))
		if err != nil || v < 1 {
			return fmt.Errorf("VERSION: %q is not a version number (see myt code history)", args[1])
		}
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		j, err := c.RollbackCode(cmd.Context(), p.ID, v)
		if err != nil {
			return err
		}
		return followStartedJob(cmd, c, p, j, detach, *output)
	}
	return cmd
}

func newCodeHistoryCmd() *cobra.Command {
	var show int
	cmd := &cobra.Command{
		Use:   "history NAME|ID",
		Short: "List the handler versions a platform ran; --show N prints one with its diff",
		Args:  cobra.ExactArgs(1),
	}
	output := outputFlag(cmd, "table")
	cmd.Flags().IntVar(&show, "show", 0, "print version N's diff against the version before it")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "table", "json"); err != nil {
			return err
		}
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		vs, err := c.CodeVersions(cmd.Context(), p.ID)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if show > 0 {
			var cur, prev *myt.CodeVersion
			for i, v := range vs {
				if v.Version == show {
					cur = v
					if i+1 < len(vs) {
						prev = vs[i+1]
					}
				}
			}
			if cur == nil {
				return fmt.Errorf("platform %s has no handler version %d", p.Name, show)
			}
			if *output == "json" {
				return printJSON(out, cur)
			}
			from, name := "", "/dev/null"
			if prev != nil {
				from, name = prev.Code, fmt.Sprintf("v%d", prev.Version)
			}
			_, err := io.WriteString(out, diff.Unified(name, fmt.Sprintf("v%d", cur.Version), from, cur.Code, 3))
			return err
		}
		if *output == "json" {
			if vs == nil {
				vs = []*myt.CodeVersion{}
			}
			return printJSON(out, vs)
		}
		if len(vs) == 0 {
			fmt.Fprintf(out, "Platform %s has no handler versions yet (one is recorded when a deploy, update or publish with a handler succeeds).\n", p.Name)
			return nil
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tBY\tCREATED\tJOB\tCHANGE\tNOTE")
		for i, v := range vs {
			prev := ""
			if i+1 < len(vs) {
				prev = vs[i+1].Code
			}
			add, del := diff.Stat(prev, v.Code)
			var note []string
			if v.Running {
				note = append(note, "running")
			}
			if v.SameAs > 0 {
				note = append(note, fmt.Sprintf("same as v%d", v.SameAs))
			}
			if v.Code == "" {
				note = append(note, "passthrough")
			}
			fmt.Fprintf(tw, "v%d\t%s\t%s\t%s %d\t+%d -%d\t%s\n", v.Version, v.Author, v.Created.Local().Format("2006-01-02 15:04"), v.JobKind, v.JobID, add, del, strings.Join(note, ", "))
		}
		return tw.Flush()
	}
	return cmd
}
