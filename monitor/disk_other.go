//go:build !unix

package monitor

import "errors"

// diskUsed is not measured on this system yet.
func diskUsed(dir string) (float64, error) {
	return 0, errors.New("disk use is measured on Unix systems only")
}
