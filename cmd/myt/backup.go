package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt/httpapi"
)

// Backup commands: run, list, download, rm, restore, schedule (against a
// MyT server).

func newBackupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Back up a platform's database, list, download, delete and restore backups",
		Long: `A backup is a native dump of the platform's database (mysqldump, pg_dump,
mongodump, influx backup) taken inside its container and stored by the MyT
server, checksummed (SHA-256) and verified; only a backup in state ok is good.
A restore replaces a running platform's data with a backup of the same
database kind. See docs/backup.md.`,
	}
	cmd.AddCommand(newBackupRunCmd(), newBackupListCmd(), newBackupDownloadCmd(), newBackupRmCmd(), newBackupRestoreCmd(), newBackupScheduleCmd())
	return cmd
}

func newBackupRunCmd() *cobra.Command {
	var detach, encrypt bool
	cmd := &cobra.Command{
		Use:   "run NAME|ID",
		Short: "Take a backup of a running platform's database now",
		Args:  cobra.ExactArgs(1),
	}
	output := outputFlag(cmd, "text")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the job and return")
	cmd.Flags().BoolVar(&encrypt, "encrypt", false, "encrypt the stored backup (with a key sealed by the server key)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "text", "json"); err != nil {
			return err
		}
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		j, err := c.StartBackup(cmd.Context(), p.ID, encrypt)
		if err != nil {
			return err
		}
		return followStartedJob(cmd, c, p, j, detach, *output)
	}
	return cmd
}

func newBackupRestoreCmd() *cobra.Command {
	var detach bool
	var confirm string
	cmd := &cobra.Command{
		Use:   "restore NAME|ID BACKUP-ID --confirm NAME",
		Short: "Replace a running platform's data with a backup of the same database kind",
		Long: `Restore a backup (of this platform or another one you own, of the same
database kind) into a running platform. Every record the platform's database
holds now is replaced: type the platform's name with --confirm.`,
		Args: cobra.ExactArgs(2),
	}
	output := outputFlag(cmd, "text")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the job and return")
	cmd.Flags().StringVar(&confirm, "confirm", "", "the platform's name: its data will be overwritten")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "text", "json"); err != nil {
			return err
		}
		id, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || id < 1 {
			return fmt.Errorf("BACKUP-ID: %q is not a backup id (see myt backup list)", args[1])
		}
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		j, err := c.StartRestore(cmd.Context(), p.ID, id, confirm)
		if err != nil {
			return err
		}
		return followStartedJob(cmd, c, p, j, detach, *output)
	}
	return cmd
}

func newBackupListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list NAME|ID",
		Short: "List a platform's backups: state, size, start, duration, checksum",
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
		bs, err := c.Backups(cmd.Context(), p.ID)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if *output == "json" {
			return printJSON(out, bs)
		}
		if len(bs) == 0 {
			fmt.Fprintf(out, "Platform %s has no backups: take one with `myt backup run %s`.\n", p.Name, p.Name)
			return nil
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tSTARTED\tDURATION\tSIZE\tREASON\tSHA-256")
		for _, b := range bs {
			sum := b.SHA256
			if len(sum) > 16 {
				sum = sum[:16]
			}
			state := b.State
			if b.Encrypted {
				state += " (encrypted)"
			}
			if b.Error != "" {
				sum = b.Error
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, state, b.Started.Local().Format("2006-01-02 15:04:05"),
				b.Duration.Round(100*time.Millisecond), humanBytes(b.Size), b.Reason, sum)
		}
		return tw.Flush()
	}
	return cmd
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func backupID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("BACKUP-ID: %q is not a backup id (see myt backup list)", s)
	}
	return id, nil
}

func newBackupDownloadCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "download BACKUP-ID [-f FILE]",
		Short: "Download a good backup's dump (decrypted), checked against its checksum",
		Args:  cobra.ExactArgs(1),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "where to write it (default: PLATFORM-backup-ID-TIME.EXT here; - for stdout)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id, err := backupID(args[0])
		if err != nil {
			return err
		}
		c, err := apiClient()
		if err != nil {
			return err
		}
		b, err := c.Backup(cmd.Context(), id)
		if err != nil {
			return err
		}
		if file == "-" {
			_, err := c.DownloadBackup(cmd.Context(), id, cmd.OutOrStdout())
			return err
		}
		if file == "" {
			file = httpapi.BackupFileName(b)
		}
		// Written to a temporary name and renamed: a cut download leaves
		// no file that looks whole.
		tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*.part")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		n, err := c.DownloadBackup(cmd.Context(), id, tmp)
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), file); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "Backup %d of %s written to %s (%s).\n", id, b.Platform, file, humanBytes(n))
		return nil
	}
	return cmd
}

func newBackupRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm BACKUP-ID",
		Short: "Delete a backup and its file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := backupID(args[0])
			if err != nil {
				return err
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			if err := c.DeleteBackup(cmd.Context(), id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Backup %d deleted.\n", id)
			return nil
		},
	}
}

func newBackupScheduleCmd() *cobra.Command {
	var daily, hourly string
	var off bool
	var keep int
	cmd := &cobra.Command{
		Use:   "schedule NAME|ID [--daily HH:MM | --hourly MM | --off] [--keep N]",
		Short: "Show or set a platform's backup schedule (local platforms)",
		Long: `Without flags, show the schedule. --daily 03:30 takes a backup every day at
03:30 UTC, --hourly 15 every hour at minute 15; --keep N keeps the newest N
scheduled backups (0 keeps all). Scheduled backups run without a signed-in
user, so only for local platforms: for ssh and cloud ones, run
'myt backup run' from a scheduler of your own, with an API token.`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&daily, "daily", "", "every day at HH:MM UTC")
	cmd.Flags().StringVar(&hourly, "hourly", "", "every hour at minute MM")
	cmd.Flags().BoolVar(&off, "off", false, "turn the schedule off")
	cmd.Flags().IntVar(&keep, "keep", -1, "keep the newest N scheduled backups (0: all)")
	cmd.MarkFlagsMutuallyExclusive("daily", "hourly", "off")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		sc, err := c.BackupSchedule(cmd.Context(), p.ID)
		if err != nil {
			return err
		}
		set := daily != "" || hourly != "" || off || keep >= 0
		switch {
		case daily != "":
			h, m, ok := strings.Cut(daily, ":")
			hh, err1 := strconv.Atoi(h)
			mm, err2 := strconv.Atoi(m)
			if !ok || err1 != nil || err2 != nil {
				return fmt.Errorf("--daily %q: give HH:MM, such as 03:30", daily)
			}
			sc.Enabled, sc.Hourly, sc.Hour, sc.Minute = true, false, hh, mm
		case hourly != "":
			mm, err := strconv.Atoi(hourly)
			if err != nil {
				return fmt.Errorf("--hourly %q: give the minute, 0 to 59", hourly)
			}
			sc.Enabled, sc.Hourly, sc.Minute = true, true, mm
		case off:
			sc.Enabled = false
		}
		if keep >= 0 {
			sc.Keep = keep
		}
		if set {
			if sc, err = c.SetBackupSchedule(cmd.Context(), sc); err != nil {
				return err
			}
		}
		out := cmd.OutOrStdout()
		switch {
		case !sc.Enabled:
			fmt.Fprintf(out, "Platform %s: no scheduled backups.\n", p.Name)
		case sc.Hourly:
			fmt.Fprintf(out, "Platform %s: a backup every hour at minute %02d, keeping the newest %d.\n", p.Name, sc.Minute, sc.Keep)
		default:
			fmt.Fprintf(out, "Platform %s: a backup every day at %02d:%02d UTC, keeping the newest %d.\n", p.Name, sc.Hour, sc.Minute, sc.Keep)
		}
		if sc.Unavailable != "" {
			fmt.Fprintln(out, sc.Unavailable)
		}
		return nil
	}
	return cmd
}
