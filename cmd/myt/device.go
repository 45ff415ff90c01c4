package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/device"
)

func newDeviceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Give devices their own broker credentials, list and revoke them",
		Long: `Each device gets its own MQTT/AMQP user on the platform's broker, which may
publish and subscribe only under its own topics (myt/<name>/...). MyT makes the
password, shows it once and keeps only its hash; every deploy and update puts
the devices back on the broker.`,
	}
	cmd.AddCommand(newDeviceAddCmd(), newDeviceListCmd(), newDeviceRevokeCmd(), newDeviceImportCmd())
	return cmd
}

func newDeviceAddCmd() *cobra.Command {
	var description, caFile string
	cmd := &cobra.Command{
		Use:   "add PLATFORM DEVICE",
		Short: "Add a device and print its password (shown once)",
		Args:  cobra.ExactArgs(2),
	}
	output := outputFlag(cmd, "table")
	cmd.Flags().StringVar(&description, "description", "", "what or where the device is")
	cmd.Flags().StringVar(&caFile, "ca", "", "also write the platform's CA certificate (PEM), which devices trust, to this file")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "table", "json"); err != nil {
			return err
		}
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		s, err := c.AddDevice(cmd.Context(), p.ID, myt.DeviceNew{Name: args[1], Description: description})
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if *output == "json" {
			return printJSON(out, s)
		}
		fmt.Fprintf(out, "Device %s added to %s.\n\n", s.Device.Name, p.Name)
		fmt.Fprintf(out, "  user      %s\n  password  %s\n  topic     %s/%s/...\n", s.Device.Name, s.Password, topicPrefix(p), s.Device.Name)
		if ep := p.Endpoints; ep != nil {
			for _, u := range []string{ep.MQTTS, ep.MQTT, ep.AMQPS, ep.AMQP} {
				if u != "" {
					fmt.Fprintf(out, "  broker    %s\n", u)
				}
			}
		}
		fmt.Fprintln(out, "\nThe password is shown only now: MyT keeps its hash.")
		if caFile != "" {
			ca, err := c.PlatformCA(cmd.Context(), p.ID)
			if err != nil {
				return fmt.Errorf("the device is added, but its CA certificate could not be read: %w", err)
			}
			if err := os.WriteFile(caFile, ca, 0o644); err != nil {
				return fmt.Errorf("the device is added, but: %w", err)
			}
			fmt.Fprintf(out, "The platform's CA certificate is in %s.\n", caFile)
		} else {
			fmt.Fprintf(out, "Devices trust the platform's CA certificate: --ca FILE writes it, or download ca.crt on the platform page.\n")
		}
		if p.Status != myt.StatusRunning {
			fmt.Fprintf(out, "Platform %s is %s: the device can connect once a deploy has made it run.\n", p.Name, p.Status)
		}
		return nil
	}
	return cmd
}

func topicPrefix(p *myt.Platform) string {
	if p.Endpoints != nil && p.Endpoints.TopicPrefix != "" {
		return p.Endpoints.TopicPrefix
	}
	return "myt"
}

func newDeviceListCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list PLATFORM",
		Short: "List a platform's devices, when each was last seen and its messages",
		Args:  cobra.ExactArgs(1),
	}
	output := outputFlag(cmd, "table")
	cmd.Flags().BoolVar(&all, "all", false, "list revoked devices too")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*output, "table", "json"); err != nil {
			return err
		}
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		ds, err := c.Devices(cmd.Context(), p.ID)
		if err != nil {
			return err
		}
		shown := []*myt.Device{}
		for _, d := range ds {
			if all || d.Revoked == nil {
				shown = append(shown, d)
			}
		}
		out := cmd.OutOrStdout()
		if *output == "json" {
			return printJSON(out, shown)
		}
		if len(shown) == 0 {
			fmt.Fprintf(out, "Platform %s has no devices yet: myt device add %s DEVICE, or myt device import %s FILE.csv\n", p.Name, p.Name, p.Name)
			return nil
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tLAST SEEN\tMESSAGES\tCREATED\tDESCRIPTION")
		for _, d := range shown {
			state, seen, msgs := "never seen", "-", "-"
			switch {
			case d.Revoked != nil:
				state = "revoked " + d.Revoked.Local().Format("2006-01-02 15:04")
			case d.Connected:
				state = "connected"
			case d.LastSeen != nil:
				state = "offline"
			}
			if d.LastSeen != nil {
				seen = d.LastSeen.Local().Format(time.DateTime)
				msgs = fmt.Sprint(d.Messages)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, state, seen, msgs, d.Created.Local().Format("2006-01-02 15:04"), d.Description)
		}
		return tw.Flush()
	}
	return cmd
}

func newDeviceRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke PLATFORM DEVICE",
		Short: "Revoke a device: its broker user is deleted and its connections closed",
		Args:  cobra.ExactArgs(2),
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
		d, err := c.RevokeDevice(cmd.Context(), p.ID, args[1])
		if err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(cmd.OutOrStdout(), d)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Device %s revoked: it can no longer connect to %s, and its open connections were closed.\n", d.Name, p.Name)
		return nil
	}
	return cmd
}

func newDeviceImportCmd() *cobra.Command {
	var outFile string
	cmd := &cobra.Command{
		Use:   "import PLATFORM FILE.csv",
		Short: "Add a fleet from CSV (name[,description]); print name,password CSV once",
		Long: `Add every device of FILE.csv (one per line: name[,description], an optional
header line, '-' reads standard input) or none: a bad line is reported with its
number and nothing is added. The new passwords are written once, as CSV
(name,password), to standard output or to -o FILE (created 0600, not
overwritten).`,
		Args: cobra.ExactArgs(2),
	}
	cmd.Flags().StringVarP(&outFile, "out", "o", "", "write the name,password CSV to this new file (0600) instead of standard output")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var in []byte
		var err error
		if args[1] == "-" {
			in, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 2<<20))
		} else {
			in, err = os.ReadFile(args[1])
		}
		if err != nil {
			return err
		}
		c, p, err := platformClient(cmd, args[0])
		if err != nil {
			return err
		}
		var w io.Writer = cmd.OutOrStdout()
		var f *os.File
		if outFile != "" {
			// Made before the import, so that the passwords have a place
			// to go when it succeeds.
			if f, err = os.OpenFile(outFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
				return err
			}
			w = f
		}
		ss, err := c.ImportDevices(cmd.Context(), p.ID, in)
		if err != nil {
			if f != nil {
				f.Close()
				os.Remove(outFile)
			}
			return err
		}
		if err := device.WriteCSV(w, ss); err != nil {
			return err
		}
		if f != nil {
			if err := f.Close(); err != nil {
				return err
			}
			names := make([]string, 0, 3)
			for i, s := range ss {
				if i == 3 {
					names = append(names, "…")
					break
				}
				names = append(names, s.Device.Name)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d devices added to %s (%s); their passwords are in %s.\n", len(ss), p.Name, strings.Join(names, ", "), outFile)
		}
		return nil
	}
	return cmd
}
