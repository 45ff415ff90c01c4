//go:build unix

package monitor

import "golang.org/x/sys/unix"

// diskUsed returns the used share of the file system holding dir, as df
// counts it: used / (used + available to unprivileged users).
func diskUsed(dir string) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	used := float64(st.Blocks-st.Bfree) * float64(st.Bsize)
	avail := float64(st.Bavail) * float64(st.Bsize)
	if used+avail == 0 {
		return 0, nil
	}
	return used / (used + avail), nil
}
