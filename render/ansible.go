package render

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"github.com/goccy/go-yaml"
)

// ansibleFS holds the static playbook and roles.
//
//go:embed ansible
var ansibleFS embed.FS

func (r *renderer) ansible() error {
	err := fs.WalkDir(ansibleFS, "ansible", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := ansibleFS.ReadFile(p)
		if err != nil {
			return err
		}
		r.b.add(p, b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ansible files: %w", err)
	}
	inv, err := r.inventory()
	if err != nil {
		return err
	}
	r.b.add("ansible/inventory.yml", inv)
	vars, err := r.groupVars()
	if err != nil {
		return err
	}
	r.b.add("ansible/group_vars/all.yml", vars)
	return nil
}

// inventory is the one-host inventory. On clouds the host, user and data
// device come from infra/outputs.json, which the deploy job (or the user,
// with `tofu output -json > outputs.json`) writes after apply.
func (r *renderer) inventory() ([]byte, error) {
	t := r.d.Spec.Target
	host := map[string]any{}
	vars := map[string]any{}
	if cloud(t.Provider) {
		host["ansible_host"] = "{{ myt_outputs.public_address.value }}"
		host["ansible_user"] = "{{ myt_outputs.ssh_user.value }}"
		if r.opts.SSH.User != "" {
			host["ansible_user"] = r.opts.SSH.User
		}
		host["myt_data_device"] = "{{ myt_outputs.data_volume_device.value }}"
		vars["myt_outputs"] = "{{ lookup('ansible.builtin.file', inventory_dir ~ '/../infra/outputs.json') | from_json }}"
		if r.b.File("ssh/id_ed25519") != nil || strings.TrimSpace(r.opts.SSHPublicKey) == "" {
			vars["ansible_ssh_private_key_file"] = "{{ inventory_dir }}/../ssh/id_ed25519"
		}
	} else {
		host["ansible_host"] = r.opts.SSH.Host
		host["ansible_port"] = r.opts.SSH.Port
		if r.opts.SSH.User != "" {
			host["ansible_user"] = r.opts.SSH.User
		}
		if t.DataDevice != "" {
			host["myt_data_device"] = t.DataDevice
		}
	}
	inv := map[string]any{"all": map[string]any{
		"children": map[string]any{"platform": map[string]any{"hosts": map[string]any{r.d.Metadata.Name: host}}},
		"vars":     vars,
	}}
	b, err := yaml.MarshalWithOptions(inv, yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return append([]byte("# Rendered by myt for platform "+r.d.Metadata.Name+".\n"), b...), nil
}

func (r *renderer) groupVars() ([]byte, error) {
	t := r.d.Spec.Target
	volumes := map[string]int{}
	groups := map[string]int{}
	for _, v := range r.volumes {
		volumes[v.Name] = v.UID
		groups[v.Name] = v.GID
	}
	// Which files each service runs on: the role recreates the services
	// whose files changed.
	mounts, err := ParseMounts(r.b.File("platform/compose.yaml").Data)
	if err != nil {
		return nil, err
	}
	serviceMounts := map[string][]string{}
	for _, svc := range mounts.Services() {
		serviceMounts[svc] = nonNil(mounts.Of(svc))
	}
	v := map[string]any{
		"myt_platform_name":      r.d.Metadata.Name,
		"myt_platform_dir":       HostPlatformDir,
		"myt_data_dir":           HostDataDir,
		"myt_admin_cidrs":        nonNil(t.AdminCIDRs),
		"myt_admin_ports":        []int{GrafanaPort},
		"myt_device_cidrs":       nonNil(t.DeviceCIDRs),
		"myt_device_ports":       nonNil(r.d.Spec.Broker.Ports()),
		"myt_ssh_port":           r.opts.SSH.Port,
		"myt_secret_owners":      r.secretOwners,
		"myt_data_volumes":       volumes,
		"myt_data_volume_groups": groups,
		"myt_service_mounts":     serviceMounts,
		"myt_worker_image":       Images["worker"] + ":" + r.opts.WorkerImageTag,
		"myt_python_image":       Images["python"],
	}
	if cloud(t.Provider) {
		v["myt_ssh_port"] = 22
	}
	if repo := strings.TrimRight(t.DockerRepository, "/"); repo != "" {
		v["docker_apt_repository"] = repo
		v["docker_apt_key_url"] = repo + "/gpg"
	}
	b, err := yaml.MarshalWithOptions(v, yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("group vars: %w", err)
	}
	return append([]byte("---\n# Rendered by myt for platform "+r.d.Metadata.Name+"; see docs/bundle.md.\n"), b...), nil
}
