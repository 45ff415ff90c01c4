package mongodb_test

import (
	"testing"

	"github.com/myt-iot/myt/internal/testenv"
)

func mongoDSN(t *testing.T) (string, string) {
	return testenv.Require(t).MongoDB(t).URI + "myt", "measurements"
}
