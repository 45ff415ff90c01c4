package render

import (
	"fmt"

	"github.com/myt-iot/myt"
)

// HostMemoryMiB is the memory of the server each size stands for, the
// smallest of the providers' instance types (render/infra/*/main.tf):
// small is t3.small, e2-small, m1.small (2 GiB; Azure's B2s has 4);
// medium is t3.large, e2-standard-2, B2ms (8 GiB); large is m6i.xlarge,
// e2-standard-4, D4s_v5 (16 GiB). OpenStack's m1.medium and m1.large have
// half of that, see openstackMemoryMiB.
var HostMemoryMiB = map[string]int{"small": 2048, "medium": 8192, "large": 16384}

// openstackMemoryMiB is HostMemoryMiB for OpenStack's default flavors.
var openstackMemoryMiB = map[string]int{"small": 2048, "medium": 4096, "large": 8192}

// DefaultHostMemoryMiB is the memory assumed for local and ssh targets,
// whose machine MyT does not choose: the limits fit a 4 GiB machine.
const DefaultHostMemoryMiB = 4096

// minWorkerMiB is the least memory a worker replica gets (the myt binary
// and a Python handler process).
const minWorkerMiB = 128

// memoryLimits are the compose services' memory limits in MiB; Worker is
// per replica.
type memoryLimits struct {
	Host, DB, RabbitMQ, Grafana, Worker int
}

// hostMemory is the memory, in MiB, of the server target t runs on.
func hostMemory(t myt.Target) int {
	switch t.Provider {
	case myt.ProviderLocal, myt.ProviderSSH:
		return DefaultHostMemoryMiB
	case myt.ProviderOpenStack:
		if m, ok := openstackMemoryMiB[t.Size]; ok {
			return m
		}
	}
	if m, ok := HostMemoryMiB[t.Size]; ok {
		return m
	}
	return HostMemoryMiB["small"]
}

// memory splits the host's memory between the services: a fifth (at least
// 512 MiB) stays with the host (kernel, dockerd, sshd, page cache), then
// the database gets 40%, RabbitMQ 25%, the workers 20% (shared by the
// replicas) and Grafana 15%.
func memory(t myt.Target, workers int) (memoryLimits, error) {
	host := hostMemory(t)
	rest := host - max(512, host/5)
	m := memoryLimits{Host: host, DB: rest * 40 / 100, RabbitMQ: rest * 25 / 100, Grafana: rest * 15 / 100}
	share := rest * 20 / 100
	m.Worker = share / max(workers, 1)
	if m.Worker < minWorkerMiB {
		return m, fmt.Errorf("spec.processing.workers: %d workers need %d MiB, but a %d MiB server leaves them %d MiB; choose a larger size or at most %d workers",
			workers, workers*minWorkerMiB, host, share, share/minWorkerMiB)
	}
	return m, nil
}
