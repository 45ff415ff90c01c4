package render

import "os/exec"

// inGroup: Windows has no process groups; when its context ends, cmd
// alone is killed (exec.CommandContext's default), not its children.
func inGroup(*exec.Cmd) {}
