package render

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"

	"github.com/myt-iot/myt"
)

// infraFS holds one static OpenTofu/Terraform module per cloud provider.
// They are copied into bundles unchanged; only terraform.tfvars.json is
// generated.
//
//go:embed infra/aws/*.tf infra/openstack/*.tf infra/azure/*.tf infra/gcp/*.tf
var infraFS embed.FS

// InfraModule returns the embedded module files of a cloud provider
// (aws, openstack, azure, gcp), keyed by file name. The data volume has
// lifecycle prevent_destroy = true, so no plan (a replaced machine, a
// changed zone, `tofu destroy`) can take the data with it; deleteData
// renders it false, for a destroy that deletes the data.
func InfraModule(provider string, deleteData bool) (map[string][]byte, error) {
	ents, err := fs.ReadDir(infraFS, "infra/"+provider)
	if err != nil {
		return nil, fmt.Errorf("no infrastructure module for provider %q", provider)
	}
	out := map[string][]byte{}
	guards := 0
	for _, e := range ents {
		b, err := infraFS.ReadFile(path.Join("infra", provider, e.Name()))
		if err != nil {
			return nil, err
		}
		guards += bytes.Count(b, protectData)
		if deleteData {
			b = bytes.ReplaceAll(b, protectData, []byte("prevent_destroy = false"))
		}
		out[e.Name()] = b
	}
	if guards != 1 {
		// A module edit that drops or doubles the guard must not pass.
		return nil, fmt.Errorf("infrastructure module %s: %d data volume guards (%q), want 1", provider, guards, protectData)
	}
	return out, nil
}

// protectData is the data volume's guard in every cloud module.
var protectData = []byte("prevent_destroy = true")

// TFVars returns the variables of the platform's infrastructure module:
// what terraform.tfvars.json holds. It carries no secret (cloud
// credentials reach tofu through the environment).
func TFVars(d *myt.Design, sshPublicKey string) map[string]any {
	t := d.Spec.Target
	v := map[string]any{
		"name":           d.Metadata.Name,
		"region":         t.Region,
		"size":           t.Size,
		"instance_type":  t.InstanceType,
		"image":          t.Image,
		"data_volume_gb": t.DataVolumeGB,
		"admin_cidrs":    nonNil(t.AdminCIDRs),
		"admin_ports":    []int{GrafanaPort},
		"device_cidrs":   nonNil(t.DeviceCIDRs),
		"device_ports":   nonNil(d.Spec.Broker.Ports()),
		"ssh_public_key": sshPublicKey,
	}
	switch t.Provider {
	case myt.ProviderAWS, myt.ProviderOpenStack, myt.ProviderGCP, myt.ProviderAzure:
		v["zone"] = t.Zone
	}
	if t.Provider == myt.ProviderOpenStack && t.ExternalNetwork != "" {
		v["external_network"] = t.ExternalNetwork
	}
	if t.Provider == myt.ProviderOpenStack && t.Network != "" {
		v["network"] = t.Network
	}
	return v
}

// nonNil makes an absent list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (r *renderer) infra() error {
	p := r.d.Spec.Target.Provider
	mod, err := InfraModule(p, r.opts.DeleteData)
	if err != nil {
		return err
	}
	for name, b := range mod {
		r.b.add("infra/"+name, b)
	}
	vars, err := json.MarshalIndent(TFVars(r.d, r.sshPub), "", "  ")
	if err != nil {
		return fmt.Errorf("tfvars: %w", err)
	}
	r.b.add("infra/terraform.tfvars.json", append(vars, '\n'))
	return nil
}
