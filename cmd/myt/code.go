package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/worker"
	"github.com/myt-iot/myt/worker/handler"
)

func newCodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "code",
		Short: "Write, test and publish the platform's Python handler",
	}
	cmd.AddCommand(newCodeTemplateCmd(), newCodeTestCmd(), newCodePushCmd(), newCodeHistoryCmd(), newCodeRollbackCmd())
	return cmd
}

func newCodeTemplateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "template",
		Short: "Print a documented handler.py template",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(handler.Template())
			return err
		},
	}
}

func newCodeTestCmd() *cobra.Command {
	var python, topic string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "test handler.py samples.ndjson",
		Short: "Run a handler on sample messages and print the records or errors",
		Long: `Run handler.py exactly as the worker does (same python3 runner, same record rules) on
each line of samples.ndjson and print one JSON line per sample: the records it
would store, or the error that would send it to myt.dead.

A sample line is either a payload ({"temperature": 21.5}), sent on --topic, or a
message {"topic": "myt/dev1/env", "payload": {...}, "id": "optional"}.
Exit status 1 when any sample fails.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			samples, err := os.ReadFile(args[1])
			if err != nil {
				return fmt.Errorf("samples: %w", err)
			}
			r, err := handler.New(cmd.Context(), handler.Options{Path: args[0], Python: python, Timeout: timeout})
			if err != nil {
				return err
			}
			defer r.Close()
			in, err := worker.ParseSamples(samples, topic)
			if err != nil {
				return fmt.Errorf("samples: %w", err)
			}
			results, err := worker.TestHandler(cmd.Context(), r, in, strings.SplitN(topic, "/", 2)[0])
			if err != nil {
				return err
			}
			out := json.NewEncoder(cmd.OutOrStdout())
			failed := 0
			for _, x := range results {
				if x.Failed() {
					failed++
				}
				if err := out.Encode(x); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d samples, %d failed\n", len(results), failed)
			if failed > 0 {
				return fmt.Errorf("%d of %d samples failed", failed, len(results))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&python, "python", "python3", "Python interpreter")
	cmd.Flags().StringVar(&topic, "topic", "myt/sample/test", "topic for samples that are bare payloads (<prefix>/<device>/<stream>)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "per-message handler timeout")
	return cmd
}

// noteUncheckedHandler says on stderr when the design's handler could not
// be compiled here (design.Parse skips the check without python3).
func noteUncheckedHandler(cmd *cobra.Command, d *myt.Design) {
	if d == nil || d.Spec.Processing.Handler == "" {
		return
	}
	if _, err := exec.LookPath("python3"); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "myt: note: python3 is not installed here, so the handler's syntax was not checked (the worker reports errors when it loads the code).")
	}
}
