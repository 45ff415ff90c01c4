package main

import (
	"bufio"
	"bytes"
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
	"github.com/myt-iot/myt/worker/record"
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
			out := json.NewEncoder(cmd.OutOrStdout())
			type result struct {
				Line    int             `json:"line"`
				Records []record.Record `json:"records,omitempty"`
				Dropped bool            `json:"dropped,omitempty"`
				Reason  string          `json:"reason,omitempty"`
				Error   string          `json:"error,omitempty"`
			}
			var ins []record.Input
			var lines []int
			var results []result
			failed := 0
			sc := bufio.NewScanner(bytes.NewReader(samples))
			sc.Buffer(make([]byte, 64<<10), 16<<20)
			n := 0
			for sc.Scan() {
				n++
				line := bytes.TrimSpace(sc.Bytes())
				if len(line) == 0 || line[0] == '#' {
					continue
				}
				m := record.Message{RoutingKey: strings.ReplaceAll(topic, "/", "."), Body: line, Received: time.Now()}
				var msg struct {
					Topic   string          `json:"topic"`
					ID      string          `json:"id"`
					Payload json.RawMessage `json:"payload"`
				}
				if json.Unmarshal(line, &msg) == nil && msg.Payload != nil {
					m.Body = msg.Payload
					m.MessageID = msg.ID
					if msg.Topic != "" {
						m.RoutingKey = strings.ReplaceAll(msg.Topic, "/", ".")
					}
				}
				in, err := record.Decode(m, strings.SplitN(topic, "/", 2)[0])
				if err != nil {
					results = append(results, result{Line: n, Reason: worker.ReasonInvalidJSON, Error: err.Error()})
					failed++
					continue
				}
				ins = append(ins, in)
				lines = append(lines, len(results))
				results = append(results, result{Line: n})
			}
			if len(ins) > 0 {
				res, err := r.Process(cmd.Context(), ins)
				if err != nil {
					return err
				}
				for j, x := range res {
					rr := &results[lines[j]]
					if x.Kind != handler.OK || x.Err != "" {
						rr.Reason, rr.Error = worker.HandlerReason(x.Kind), x.Err
						failed++
						continue
					}
					recs, err := record.FromHandler(ins[j], x.Value)
					if err != nil {
						rr.Reason, rr.Error = worker.ReasonHandlerResult, err.Error()
						failed++
						continue
					}
					rr.Records, rr.Dropped = recs, len(recs) == 0
				}
			}
			for _, x := range results {
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
