// Command myt is MyT's one binary: the control plane (serve, CLI), the
// bundle renderer and the platform worker, as cobra subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		// The message, then one line per problem; details went to the log.
		fmt.Fprintln(os.Stderr, "myt: "+errorText(err))
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "myt",
		Short:         "Design, deploy and operate your own IoT platform",
		Long:          "MyT designs an IoT platform (MQTT/AMQP broker, a worker running your Python, the database that fits your data, Grafana),\ndeploys it on infrastructure you own, operates it and destroys it. You own every byte.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newServeCmd(),
		newLoginCmd(),
		newLogoutCmd(),
		newCredsCmd(),
		newPlatformCmd(),
		newUserCmd(),
		newVaultCmd(),
	)
	root.AddCommand(newWorkerCmd(), newCodeCmd(), newDataCmd(), newBackupCmd())
	root.AddCommand(newRenderCmd(), newJobCmd(), newDoctorCmd(), newDocsCmd())
	root.AddCommand(newDeviceCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the MyT version, commit and build date",
		Args:  cobra.NoArgs,
	}
	output := outputFlag(cmd, "text")
	cmd.Flags().Lookup("output").Usage = "output format: text or json"
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output, "text", "json"); err != nil {
			return err
		}
		v := versionInfo{Version: myt.Version, Commit: myt.Commit, Date: myt.Date,
			Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
		if *output == "json" {
			return printJSON(cmd.OutOrStdout(), v)
		}
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "myt %s\ncommit %s\nbuilt %s with %s for %s/%s\n", v.Version, v.Commit, v.Date, v.Go, v.OS, v.Arch)
		return err
	}
	return cmd
}

// versionInfo is what `myt version --output json` prints.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}
