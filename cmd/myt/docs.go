package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/myt-iot/myt"
)

// newDocsCmd is `myt docs DIR`, hidden: scripts/release writes the man
// pages and shell completions that the packages install from the CLI
// itself, so they never fall behind its commands and flags.
func newDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "docs DIR",
		Short:  "Write man pages (DIR/man1) and shell completions (DIR/completions) of this CLI",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			man := filepath.Join(args[0], "man1")
			comp := filepath.Join(args[0], "completions")
			for _, d := range []string{man, comp} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return err
				}
			}
			root.DisableAutoGenTag = true // reproducible: no generation date in the pages
			hdr := &doc.GenManHeader{Title: "MYT", Section: "1", Source: "MyT " + myt.Version}
			if err := doc.GenManTree(root, hdr, man); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			gens := map[string]func(string) error{
				"myt.bash": func(p string) error { return root.GenBashCompletionFileV2(p, true) },
				"_myt":     root.GenZshCompletionFile,
				"myt.fish": func(p string) error { return root.GenFishCompletionFile(p, true) },
			}
			for name, gen := range gens {
				if err := gen(filepath.Join(comp, name)); err != nil {
					return fmt.Errorf("completion %s: %w", name, err)
				}
			}
			return nil
		},
	}
}
