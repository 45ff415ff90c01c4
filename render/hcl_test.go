package render_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
)

// module is a parsed infrastructure module.
type module struct {
	files     map[string]*hcl.File
	src       map[string][]byte
	variables map[string]bool
	outputs   map[string]bool
	resources map[string]*hclsyntax.Block // "type.name"
}

func parseModule(t *testing.T, provider string) module {
	t.Helper()
	files, err := render.InfraModule(provider)
	if err != nil {
		t.Fatal(err)
	}
	m := module{files: map[string]*hcl.File{}, src: files, variables: map[string]bool{}, outputs: map[string]bool{}, resources: map[string]*hclsyntax.Block{}}
	for name, b := range files {
		f, diags := hclsyntax.ParseConfig(b, name, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s/%s: %s", provider, name, diags.Error())
		}
		m.files[name] = f
		for _, blk := range f.Body.(*hclsyntax.Body).Blocks {
			switch blk.Type {
			case "variable":
				m.variables[blk.Labels[0]] = true
			case "output":
				m.outputs[blk.Labels[0]] = true
			case "resource":
				m.resources[blk.Labels[0]+"."+blk.Labels[1]] = blk
			}
		}
	}
	return m
}

// TestHCLModules parses every provider's module with the HCL parser and
// checks what `validate` would for azure and gcp, whose providers cannot
// be installed here: every var.X is declared, every tfvars key is a
// variable, the outputs Ansible reads exist, and the resources the issue
// lists are there.
func TestHCLModules(t *testing.T) {
	wantResources := map[string][]string{
		"aws":       {"aws_vpc.this", "aws_subnet.this", "aws_internet_gateway.this", "aws_route_table.this", "aws_security_group.this", "aws_key_pair.this", "aws_instance.this", "aws_ebs_volume.data", "aws_volume_attachment.data", "aws_eip.this"},
		"openstack": {"openstack_networking_secgroup_v2.this", "openstack_networking_secgroup_rule_v2.ingress", "openstack_compute_keypair_v2.this", "openstack_compute_instance_v2.this", "openstack_blockstorage_volume_v3.data", "openstack_compute_volume_attach_v2.data", "openstack_networking_floatingip_v2.this"},
		"azure":     {"azurerm_resource_group.this", "azurerm_virtual_network.this", "azurerm_subnet.this", "azurerm_network_security_group.this", "azurerm_network_security_rule.ingress", "azurerm_public_ip.this", "azurerm_network_interface.this", "azurerm_linux_virtual_machine.this", "azurerm_managed_disk.data", "azurerm_virtual_machine_data_disk_attachment.data"},
		"gcp":       {"google_compute_network.this", "google_compute_firewall.admin", "google_compute_firewall.devices", "google_compute_address.this", "google_compute_instance.this", "google_compute_disk.data"},
	}
	byProvider := map[string]*myt.Design{}
	for _, c := range designs(t) {
		byProvider[c.d.Spec.Target.Provider] = c.d
	}
	for _, p := range []string{"aws", "openstack", "azure", "gcp"} {
		t.Run(p, func(t *testing.T) {
			m := parseModule(t, p)
			for _, r := range wantResources[p] {
				if m.resources[r] == nil {
					t.Errorf("resource %s missing", r)
				}
			}
			for _, o := range []string{"public_address", "ssh_user", "data_volume_device"} {
				if !m.outputs[o] {
					t.Errorf("output %s missing", o)
				}
			}
			// Every var.X referenced is declared.
			for name, f := range m.files {
				for _, trav := range variablesIn(f.Body.(*hclsyntax.Body)) {
					if trav.RootName() == "var" {
						v := trav[1].(hcl.TraverseAttr).Name
						if !m.variables[v] {
							t.Errorf("%s: var.%s is not declared", name, v)
						}
					}
				}
			}
			// Every tfvars key is a variable; every variable without a
			// default is given.
			d := byProvider[p]
			if d == nil {
				t.Fatalf("no test design for %s", p)
			}
			vars := render.TFVars(d, "ssh-ed25519 AAAA test")
			for k := range vars {
				if !m.variables[k] {
					t.Errorf("tfvars key %s is not a variable of the %s module", k, p)
				}
			}
			for v := range m.variables {
				if _, given := vars[v]; !given && !hasDefault(t, m, v) {
					t.Errorf("variable %s has no default and is not in tfvars", v)
				}
			}
			// Ingress resources never name the whole Internet literally:
			// admin rules take var.admin_cidrs, device rules var.device_cidrs.
			for addr, blk := range m.resources {
				if !isIngress(blk.Labels[0]) {
					continue
				}
				src := string(blk.Range().SliceBytes(m.src[blk.Range().Filename]))
				if strings.Contains(src, "0.0.0.0/0") || strings.Contains(src, "::/0") {
					t.Errorf("%s names the whole Internet literally", addr)
				}
			}
		})
	}
}

func isIngress(typ string) bool {
	switch typ {
	case "aws_vpc_security_group_ingress_rule", "openstack_networking_secgroup_rule_v2", "azurerm_network_security_rule", "google_compute_firewall":
		return true
	}
	return false
}

func hasDefault(t *testing.T, m module, name string) bool {
	for _, f := range m.files {
		for _, blk := range f.Body.(*hclsyntax.Body).Blocks {
			if blk.Type == "variable" && blk.Labels[0] == name {
				_, ok := blk.Body.Attributes["default"]
				return ok
			}
		}
	}
	return false
}

func variablesIn(body *hclsyntax.Body) []hcl.Traversal {
	var out []hcl.Traversal
	for _, a := range body.Attributes {
		out = append(out, a.Expr.Variables()...)
	}
	for _, b := range body.Blocks {
		out = append(out, variablesIn(b.Body)...)
	}
	return out
}

// TestTFVarsSecurity checks the generated variables of every cloud design:
// admin networks are never the whole Internet, device ports are exactly
// the broker's, plaintext ports only when asked, management never.
func TestTFVarsSecurity(t *testing.T) {
	cases := designs(t)
	// Plaintext on a cloud: 1883 and 5672 must then be open to devices.
	plain := *designNamed(t, "aws-timescaledb")
	plain.Spec.Broker.Plaintext = true
	cases = append(cases, designCase{"aws-plaintext", &plain})
	for _, c := range cases {
		if c.d.Spec.Target.Provider == myt.ProviderSSH || c.d.Spec.Target.Provider == myt.ProviderLocal {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			b := mustRender(t, c.d)
			var v struct {
				AdminCIDRs  []string `json:"admin_cidrs"`
				AdminPorts  []int    `json:"admin_ports"`
				DeviceCIDRs []string `json:"device_cidrs"`
				DevicePorts []int    `json:"device_ports"`
				SSHKey      string   `json:"ssh_public_key"`
			}
			f := b.File("infra/terraform.tfvars.json")
			if f == nil {
				t.Fatal("no terraform.tfvars.json")
			}
			if err := json.Unmarshal(f.Data, &v); err != nil {
				t.Fatal(err)
			}
			for _, cidr := range v.AdminCIDRs {
				if cidr == "0.0.0.0/0" || cidr == "::/0" {
					t.Errorf("admin CIDR %s opens SSH to the Internet", cidr)
				}
			}
			if len(v.AdminCIDRs) == 0 {
				t.Error("no admin CIDRs")
			}
			if diff := cmp.Diff([]int{render.GrafanaPort}, v.AdminPorts); diff != "" {
				t.Errorf("admin ports: %s", diff)
			}
			want := c.d.Spec.Broker.Ports()
			if diff := cmp.Diff(want, v.DevicePorts); diff != "" {
				t.Errorf("device ports (-want +got): %s", diff)
			}
			if c.d.Spec.Broker.Plaintext && (!slices.Contains(v.DevicePorts, 1883) || !slices.Contains(v.DevicePorts, 5672)) {
				t.Errorf("plaintext: true but device ports %v", v.DevicePorts)
			}
			for _, p := range v.DevicePorts {
				if (p == 1883 || p == 5672) && !c.d.Spec.Broker.Plaintext {
					t.Errorf("plaintext port %d open without plaintext: true", p)
				}
				if p == 22 || p == render.ManagementPort || p == render.WorkerAPIPort {
					t.Errorf("port %d open to devices", p)
				}
			}
			if !strings.HasPrefix(v.SSHKey, "ssh-ed25519 ") {
				t.Errorf("ssh_public_key %q", v.SSHKey)
			}
		})
	}
}
