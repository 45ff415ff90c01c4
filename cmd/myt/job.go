package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/httpapi"
)

// newPlatformJobCmd is `myt platform deploy|update|destroy NAME`.
func newPlatformJobCmd(kind, short string) *cobra.Command {
	var yes, deleteData, detach, noFinalBackup bool
	var confirm string
	cmd := &cobra.Command{
		Use:   kind + " NAME|ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
	}
	output := outputFlag(cmd, "text")
	cmd.Flags().Lookup("output").Usage = "output format: text (follow the log) or json (the finished job)"
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "apply a cloud plan without waiting for approval (a plan that destroys data still needs --confirm)")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the job and return; follow it with `myt platform logs NAME -f`")
	if kind == myt.JobDestroy {
		cmd.Flags().BoolVar(&deleteData, "delete-data", false, "also delete the data volume / data directory (needs --confirm NAME)")
		cmd.Flags().BoolVar(&noFinalBackup, "no-final-backup", false, "destroy without first taking a backup of the database (taken, stored and verified by default for a deployed platform)")
	}
	cmd.Flags().StringVar(&confirm, "confirm", "", "the platform's name, to confirm deleting data")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "text", "json"); err != nil {
			return err
		}
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		req := myt.JobRequest{Kind: kind, DeleteData: deleteData, Confirm: confirm, AutoApprove: yes}
		if noFinalBackup {
			req.FinalBackup = new(bool)
		}
		j, err := c.StartJob(cmd.Context(), p.ID, req)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if *output == "text" {
			fmt.Fprintf(out, "Started %s job %d of platform %s.\n", kind, j.ID, p.Name)
		}
		if detach {
			if *output == "json" {
				return printJSON(out, j)
			}
			return nil
		}
		logOut := out
		if *output == "json" {
			logOut = io.Discard
		}
		j, err = followJob(cmd.Context(), c, j.ID, logOut, false)
		if err != nil {
			return err
		}
		if *output == "json" {
			if err := printJSON(out, j); err != nil {
				return err
			}
		}
		return jobOutcome(out, j, *output == "text")
	}
	return cmd
}

// followJob prints the job's log as it grows until the job ends (or, unless
// pastApproval, waits for approval), and returns the job.
func followJob(ctx context.Context, c *httpapi.Client, id int64, w io.Writer, pastApproval bool) (*myt.Job, error) {
	var after int64
	for {
		l, err := c.JobLog(ctx, id, after, 30*time.Second)
		if err != nil {
			return nil, err
		}
		for _, ch := range l.Chunks {
			io.WriteString(w, ch.Text)
			after = ch.Seq
		}
		if l.Done {
			return c.Job(ctx, id)
		}
		if !pastApproval && len(l.Chunks) == 0 {
			j, err := c.Job(ctx, id)
			if err != nil {
				return nil, err
			}
			if j.State == myt.JobAwaitingApproval {
				return j, nil
			}
		}
	}
}

// jobOutcome says how the job ended; a failed or cancelled job is an
// error (non-zero exit).
func jobOutcome(w io.Writer, j *myt.Job, text bool) error {
	switch j.State {
	case myt.JobSucceeded:
		if text {
			fmt.Fprintf(w, "Job %d succeeded. %s\n", j.ID, j.Summary)
		}
		return nil
	case myt.JobAwaitingApproval:
		if text && j.Plan != nil {
			fmt.Fprintf(w, "\nPlan: %d to add, %d to change, %d to destroy.\n", j.Plan.Add, j.Plan.Change, j.Plan.Destroy)
			if j.Plan.ReplacesHost {
				fmt.Fprintln(w, "WARNING: this plan replaces the platform's machine.")
			}
			if j.Plan.DestroysData {
				fmt.Fprintln(w, "WARNING: this plan DESTROYS the data volume.")
			}
			fmt.Fprintf(w, "Approve it with `myt job approve %d` (or cancel with `myt job cancel %d`).\n", j.ID, j.ID)
		}
		return nil
	}
	return fmt.Errorf("job %d %s: %s", j.ID, j.State, j.Error)
}

func newPlatformLogsCmd() *cobra.Command {
	var follow bool
	var jobID int64
	cmd := &cobra.Command{
		Use:   "logs NAME|ID",
		Short: "Print the log of the platform's latest job (-f follows it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, p, err := platformClient(cmd, args[0])
			if err != nil {
				return err
			}
			if jobID == 0 {
				jobs, err := c.Jobs(cmd.Context(), p.ID, 1)
				if err != nil {
					return err
				}
				if len(jobs) == 0 {
					return fmt.Errorf("platform %s has no jobs yet", p.Name)
				}
				jobID = jobs[0].ID
			}
			out := cmd.OutOrStdout()
			if follow {
				j, err := followJob(cmd.Context(), c, jobID, out, true)
				if err != nil {
					return err
				}
				return jobOutcome(out, j, true)
			}
			var after int64
			for {
				l, err := c.JobLog(cmd.Context(), jobID, after, 0)
				if err != nil {
					return err
				}
				for _, ch := range l.Chunks {
					io.WriteString(out, ch.Text)
					after = ch.Seq
				}
				if len(l.Chunks) == 0 || l.Done && len(l.Chunks) < 1000 {
					return nil
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the job ends")
	cmd.Flags().Int64Var(&jobID, "job", 0, "a job id instead of the latest job")
	return cmd
}

func newPlatformStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status NAME|ID",
		Short: "Show a platform's status, endpoints and latest job",
		Args:  cobra.ExactArgs(1),
	}
	output := outputFlag(cmd, "table")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "table", "json"); err != nil {
			return err
		}
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		jobs, err := c.Jobs(cmd.Context(), p.ID, 1)
		if err != nil {
			return err
		}
		var last *myt.Job
		if len(jobs) > 0 {
			last = jobs[0]
		}
		out := cmd.OutOrStdout()
		if *output == "json" {
			return printJSON(out, struct {
				Platform *myt.Platform `json:"platform"`
				LastJob  *myt.Job      `json:"lastJob"`
			}{p, last})
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Platform:\t%s (id %d)\n", p.Name, p.ID)
		fmt.Fprintf(tw, "Status:\t%s\n", p.Status)
		fmt.Fprintf(tw, "Revision:\t%d designed, %d deployed\n", p.Revision, p.DeployedRevision)
		if e := p.Endpoints; e != nil {
			for _, kv := range [][2]string{{"MQTTS", e.MQTTS}, {"MQTT", e.MQTT}, {"AMQPS", e.AMQPS}, {"AMQP", e.AMQP}, {"Grafana", e.Grafana}} {
				if kv[1] != "" {
					fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
				}
			}
			fmt.Fprintf(tw, "Device user:\t%s (topics %s/<device>/...)\n", e.DeviceUser, e.TopicPrefix)
		}
		if last != nil {
			fmt.Fprintf(tw, "Last job:\t%d %s %s%s\n", last.ID, last.Kind, last.State, suffix(last.Error, last.Summary))
		}
		return tw.Flush()
	}
	return cmd
}

func suffix(parts ...string) string {
	for _, p := range parts {
		if p != "" {
			return ": " + p
		}
	}
	return ""
}

func newJobCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "job",
		Aliases: []string{"jobs"},
		Short:   "List, show, approve and cancel deploy jobs",
	}
	cmd.AddCommand(newJobListCmd(), newJobShowCmd(), newJobApproveCmd(), newJobCancelCmd())
	return cmd
}

func newJobListCmd() *cobra.Command {
	var platform string
	cmd := &cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "List your jobs, newest first", Args: cobra.NoArgs}
	output := outputFlag(cmd, "table")
	cmd.Flags().StringVar(&platform, "platform", "", "only this platform's jobs (name or id)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output, "table", "json"); err != nil {
			return err
		}
		c, err := apiClient()
		if err != nil {
			return err
		}
		var pid int64
		if platform != "" {
			p, err := findPlatform(cmd, c, platform)
			if err != nil {
				return err
			}
			pid = p.ID
		}
		jobs, err := c.Jobs(cmd.Context(), pid, 0)
		if err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(cmd.OutOrStdout(), jobs)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPLATFORM\tKIND\tSTATE\tREVISION\tBY\tCREATED\tDURATION")
		for _, j := range jobs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", j.ID, j.Platform, j.Kind, j.State, j.Revision, j.StartedBy, j.Created.Format("2006-01-02 15:04"), duration(j))
		}
		return tw.Flush()
	}
	return cmd
}

func duration(j *myt.Job) string {
	if j.Started == nil {
		return "-"
	}
	end := time.Now()
	if j.Finished != nil {
		end = *j.Finished
	}
	return end.Sub(*j.Started).Round(time.Second).String()
}

func jobArg(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, errors.New("give a job id (see `myt job list`)")
	}
	return id, nil
}

func newJobShowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "show ID", Short: "Show a job: state, steps and plan", Args: cobra.ExactArgs(1)}
	output := outputFlag(cmd, "table")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "table", "json"); err != nil {
			return err
		}
		id, err := jobArg(args[0])
		if err != nil {
			return err
		}
		c, err := apiClient()
		if err != nil {
			return err
		}
		j, err := c.Job(cmd.Context(), id)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if *output == "json" {
			return printJSON(out, j)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Job:\t%d (%s of %s, revision %d, by %s)\n", j.ID, j.Kind, j.Platform, j.Revision, j.StartedBy)
		fmt.Fprintf(tw, "State:\t%s%s\n", j.State, suffix(j.Error, j.Summary))
		fmt.Fprintf(tw, "Duration:\t%s\n", duration(j))
		for _, s := range j.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Name, s.State, s.Detail)
		}
		if p := j.Plan; p != nil {
			fmt.Fprintf(tw, "Plan:\t%d to add, %d to change, %d to destroy\n", p.Add, p.Change, p.Destroy)
			for _, ch := range p.Changes {
				mark := ""
				if ch.Data && (ch.Action == "delete" || ch.Action == "replace") {
					mark = "  <- DATA VOLUME"
				}
				fmt.Fprintf(tw, "  %s\t%s%s\n", ch.Action, ch.Address, mark)
			}
		}
		return tw.Flush()
	}
	return cmd
}

func newJobApproveCmd() *cobra.Command {
	var confirm string
	var detach bool
	cmd := &cobra.Command{
		Use:   "approve ID",
		Short: "Apply the plan of a job awaiting approval, then follow it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := jobArg(args[0])
			if err != nil {
				return err
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			j, err := c.ApproveJob(cmd.Context(), id, confirm)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Approved job %d (%s).\n", j.ID, j.State)
			if detach {
				return nil
			}
			if j, err = followJob(cmd.Context(), c, id, out, true); err != nil {
				return err
			}
			return jobOutcome(out, j, true)
		},
	}
	cmd.Flags().StringVar(&confirm, "confirm", "", "the platform's name, when the plan destroys the data volume")
	cmd.Flags().BoolVar(&detach, "detach", false, "return at once")
	return cmd
}

func newJobCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel an active job (its tools are stopped)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := jobArg(args[0])
			if err != nil {
				return err
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			j, err := c.CancelJob(cmd.Context(), id)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Job %d is %s.\n", j.ID, strings.ToLower(j.State))
			return nil
		},
	}
}

// followStartedJob says that j started and, unless detach, follows its
// log to the end (text) or prints the finished job (json); a failed job
// is a non-zero exit.
func followStartedJob(cmd *cobra.Command, c *httpapi.Client, p *myt.Platform, j *myt.Job, detach bool, output string) error {
	out := cmd.OutOrStdout()
	if output == "text" {
		fmt.Fprintf(out, "Started %s job %d of platform %s.\n", j.Kind, j.ID, p.Name)
	}
	if detach {
		if output == "json" {
			return printJSON(out, j)
		}
		return nil
	}
	logOut := out
	if output == "json" {
		logOut = io.Discard
	}
	j, err := followJob(cmd.Context(), c, j.ID, logOut, true)
	if err != nil {
		return err
	}
	if output == "json" {
		if err := printJSON(out, j); err != nil {
			return err
		}
	}
	return jobOutcome(out, j, output == "text")
}
