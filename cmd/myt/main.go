// Command myt is MyT's one binary: the control plane (serve, CLI), the
// bundle renderer and the platform worker, as cobra subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
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
	root.AddCommand(newWorkerCmd(), newCodeCmd())
	root.AddCommand(newRenderCmd(), newJobCmd(), newDoctorCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the MyT version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "myt", myt.Version)
			return err
		},
	}
}
