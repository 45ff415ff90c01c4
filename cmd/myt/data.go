package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/httpapi"
)

// Day-2 data commands: export a running platform's records, move them
// into another platform (against a MyT server).

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Export a platform's records, or move them into another platform",
	}
	cmd.AddCommand(newDataExportCmd(), newDataMoveCmd())
	return cmd
}

// rangeFlags are --from, --to and --device, checked before any request.
type rangeFlags struct{ from, to, device string }

func (f *rangeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.from, "from", "", "first time (inclusive): RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02, UTC); default: the first record")
	cmd.Flags().StringVar(&f.to, "to", "", "end time (exclusive): RFC 3339 or a date, which counts its whole day; default: no end")
	cmd.Flags().StringVar(&f.device, "device", "", "only this device's records")
}

// times returns --from and --to as RFC 3339 ("" when not given), or an
// error naming the flag.
func (f *rangeFlags) times() (string, string, error) {
	from, to, err := myt.ParseExportRange(f.from, f.to, "--from", "--to")
	if err != nil {
		return "", "", err
	}
	str := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339Nano)
	}
	return str(from), str(to), nil
}

func newDataExportCmd() *cobra.Command {
	var rf rangeFlags
	var format, output string
	cmd := &cobra.Command{
		Use:   "export NAME|ID",
		Short: "Download a running platform's records as CSV or NDJSON",
		Long: `Download a running platform's records in time order, streamed from its worker
through MyT: nothing holds the whole export in memory.

NDJSON lines are records {id, device, topic, ts, fields}, the format of the
worker's import. CSV columns are id, device, topic, ts, the declared fields,
then the other fields as JSON.

With -o FILE the export is written to a temporary file beside FILE and renamed
to FILE only when it is complete: an export cut short leaves no FILE and exits
non-zero. Without -o it goes to stdout (and a cut exits non-zero too).`,
		Example: `  myt data export home --from 2026-01-01 --to 2026-01-31 --format csv -o january.csv
  myt data export home --device kitchen --from 2026-01-02T06:00:00Z -o kitchen.ndjson`,
		Args: cobra.ExactArgs(1),
	}
	rf.add(cmd)
	cmd.Flags().StringVar(&format, "format", myt.FormatNDJSON, "csv or ndjson")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (complete or not at all); default stdout")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if format != myt.FormatCSV && format != myt.FormatNDJSON {
			return fmt.Errorf("--format %q: want csv or ndjson", format)
		}
		from, to, err := rf.times()
		if err != nil {
			return err
		}
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		export := func(w io.Writer) (int64, error) {
			return c.Export(cmd.Context(), p.ID, from, to, rf.device, format, w)
		}
		start := time.Now()
		var n int64
		if output == "" {
			n, err = export(cmd.OutOrStdout())
		} else {
			n, err = writeComplete(output, export)
		}
		if err != nil {
			return err
		}
		if output != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "Exported %s of %s to %s in %s.\n", byteCount(n), p.Name, output, time.Since(start).Round(100*time.Millisecond))
		}
		return nil
	}
	return cmd
}

// writeComplete writes path through write, to a temporary file in its
// directory renamed to path only when write succeeded: a failed write
// leaves no path (and no temporary file), never one that looks complete.
func writeComplete(path string, write func(io.Writer) (int64, error)) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return 0, err
	}
	n, err := write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return n, fmt.Errorf("%w (%s not written)", err, path)
	}
	return n, nil
}

func byteCount(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func newDataMoveCmd() *cobra.Command {
	var rf rangeFlags
	cmd := &cobra.Command{
		Use:   "move SOURCE DESTINATION",
		Short: "Copy a running platform's records into another running platform (any database kinds)",
		Long: `Stream SOURCE's records (its export, NDJSON) into DESTINATION's import, from
worker to worker through MyT, whatever the two databases are (MySQL to InfluxDB,
TimescaleDB to MongoDB, ...). Both platforms must be yours and running.

Records keep their ids, so moving again adds no record: a move cut short is
completed by moving again. SOURCE keeps its records. It prints how many records
were read, imported (records already there count, and stay one) and rejected
by DESTINATION's database (with the first reasons), and exits non-zero when a
record was rejected or the move stopped.`,
		Example: `  myt data move old-mysql new-influx
  myt data move home lab --from 2026-01-01 --device kitchen`,
		Args: cobra.ExactArgs(2),
	}
	rf.add(cmd)
	output := outputFlag(cmd, "text")
	cmd.Flags().Lookup("output").Usage = "output format: text or json"
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "text", "json"); err != nil {
			return err
		}
		from, to, err := rf.times()
		if err != nil {
			return err
		}
		c, err := apiClient()
		if err != nil {
			return err
		}
		src, err := findPlatform(cmd, c, args[0])
		if err != nil {
			return err
		}
		dst, err := findPlatform(cmd, c, args[1])
		if err != nil {
			return err
		}
		start := time.Now()
		res, err := c.Move(cmd.Context(), src.ID, httpapi.MoveRequest{Destination: dst.ID, From: from, To: to, Device: rf.device})
		if err != nil {
			return err
		}
		if *output == "json" {
			if err := printJSON(cmd.OutOrStdout(), res); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "Moved %s -> %s in %s: %d records read, %d imported, %d rejected.\n",
				res.From, res.To, time.Since(start).Round(100*time.Millisecond), res.Exported, res.Imported, res.Rejected)
			for _, r := range res.Reasons {
				fmt.Fprintln(cmd.OutOrStdout(), "  rejected "+r)
			}
		}
		if res.Rejected > 0 {
			return errors.New("some records were rejected by " + res.To + "'s database")
		}
		return nil
	}
	return cmd
}
