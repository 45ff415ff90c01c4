package render_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
	files, err := render.InfraModule(provider, false)
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
		"openstack": {"openstack_networking_secgroup_v2.this", "openstack_networking_secgroup_rule_v2.ingress", "openstack_compute_keypair_v2.this", "openstack_compute_instance_v2.this", "openstack_blockstorage_volume_v3.data", "openstack_compute_volume_attach_v2.data", "openstack_networking_floatingip_v2.this", "openstack_networking_port_v2.this", "openstack_networking_floatingip_associate_v2.this"},
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
				if p == 22 || p == render.ManagementPort || p == render.WorkerAPIPort || p == render.WorkerHostPort {
					t.Errorf("port %d open to devices", p)
				}
			}
			if !strings.HasPrefix(v.SSHKey, "ssh-ed25519 ") {
				t.Errorf("ssh_public_key %q", v.SSHKey)
			}
		})
	}
}

// attrSource is an attribute's expression as written.
func attrSource(m module, blk *hclsyntax.Block, name string) string {
	a := blk.Body.Attributes[name]
	if a == nil {
		return ""
	}
	return string(a.Expr.Range().SliceBytes(m.src[a.Expr.Range().Filename]))
}

// objectItems maps an object expression's keys to their values' source.
func objectItems(m module, obj *hclsyntax.ObjectConsExpr) map[string]string {
	out := map[string]string{}
	for _, it := range obj.Items {
		k := string(it.KeyExpr.Range().SliceBytes(m.src[it.KeyExpr.Range().Filename]))
		out[strings.Trim(k, `"`)] = string(it.ValueExpr.Range().SliceBytes(m.src[it.ValueExpr.Range().Filename]))
	}
	return out
}

// TestHCLDataVolumeGuard: in every cloud module the data volume has
// lifecycle prevent_destroy = true, and only the module rendered for a
// destroy that deletes the data has it false. (For aws the guard is
// planned by the real provider in TestTofuDestroyGuardsData.)
func TestHCLDataVolumeGuard(t *testing.T) {
	volumes := map[string]string{
		"aws": "aws_ebs_volume.data", "openstack": "openstack_blockstorage_volume_v3.data",
		"azure": "azurerm_managed_disk.data", "gcp": "google_compute_disk.data",
	}
	for p, addr := range volumes {
		t.Run(p, func(t *testing.T) {
			for _, deleteData := range []bool{false, true} {
				files, err := render.InfraModule(p, deleteData)
				if err != nil {
					t.Fatal(err)
				}
				var vol *hclsyntax.Block
				for name, b := range files {
					f, diags := hclsyntax.ParseConfig(b, name, hcl.InitialPos)
					if diags.HasErrors() {
						t.Fatal(diags.Error())
					}
					for _, blk := range f.Body.(*hclsyntax.Body).Blocks {
						if blk.Type == "resource" && blk.Labels[0]+"."+blk.Labels[1] == addr {
							vol = blk
						}
					}
				}
				if vol == nil {
					t.Fatalf("no %s", addr)
				}
				guard := ""
				for _, b := range vol.Body.Blocks {
					if a := b.Body.Attributes["prevent_destroy"]; b.Type == "lifecycle" && a != nil {
						guard = string(a.Expr.Range().SliceBytes(files[a.Expr.Range().Filename]))
					}
				}
				if want := strconv.FormatBool(!deleteData); guard != want {
					t.Errorf("deleteData=%v: %s lifecycle.prevent_destroy = %q, want %s", deleteData, addr, guard, want)
				}
			}
		})
	}
}

// TestHCLGCPInstance checks what the gcp module needs to work and that no
// provider is here to plan: a machine_type change may stop the instance
// (otherwise the provider refuses it), and OS Login is off on the
// instance, since with it on (project or organization policy) the
// ssh-keys metadata is ignored and Ansible cannot log in.
func TestHCLGCPInstance(t *testing.T) {
	m := parseModule(t, "gcp")
	vm := m.resources["google_compute_instance.this"]
	if src := attrSource(m, vm, "allow_stopping_for_update"); src != "true" {
		t.Errorf("allow_stopping_for_update = %q, want true", src)
	}
	md, ok := vm.Body.Attributes["metadata"].Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatal("metadata is not an object")
	}
	got := objectItems(m, md)
	if got["enable-oslogin"] != `"FALSE"` {
		t.Errorf("metadata enable-oslogin = %s, want \"FALSE\"", got["enable-oslogin"])
	}
	if !strings.Contains(got["ssh-keys"], "var.ssh_public_key") {
		t.Errorf("metadata ssh-keys = %s", got["ssh-keys"])
	}
	for _, fw := range []string{"google_compute_firewall.admin", "google_compute_firewall.devices"} {
		if src := attrSource(m, m.resources[fw], "source_ranges"); src != "each.value" {
			t.Errorf("%s source_ranges = %s, want each.value (one family per rule)", fw, src)
		}
	}
}

// TestGCPFirewallFamilies evaluates the gcp module's own locals with a
// real OpenTofu/Terraform (no provider needed) and checks that the source
// ranges of each firewall rule are of one address family: GCP refuses a
// rule that mixes IPv4 and IPv6.
func TestGCPFirewallFamilies(t *testing.T) {
	bin := tfBinary(t)
	m := parseModule(t, "gcp")
	dir := t.TempDir()
	var locals []byte
	for _, blk := range m.files["main.tf"].Body.(*hclsyntax.Body).Blocks {
		if blk.Type == "locals" {
			locals = append(locals, blk.Range().SliceBytes(m.src["main.tf"])...)
			locals = append(locals, '\n')
		}
	}
	outputs := `
output "admin_ranges" { value = local.admin_ranges }
output "device_ranges" { value = local.device_ranges }
`
	d := *designNamed(t, "gcp-mongodb")
	d.Spec.Target.AdminCIDRs = []string{"192.0.2.10/32", "2001:db8:10::/48", "198.51.100.0/24"}
	d.Spec.Target.DeviceCIDRs = []string{"203.0.113.0/24"}
	vars, err := json.Marshal(render.TFVars(&d, "ssh-ed25519 AAAA test"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"variables.tf": m.src["variables.tf"], "locals.tf": append(locals, outputs...), "terraform.tfvars.json": vars,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cli := filepath.Join(dir, "none.rc")
	tfRun(t, bin, cli, dir, "init", "-input=false", "-backend=false", "-no-color")
	tfRun(t, bin, cli, dir, "apply", "-auto-approve", "-input=false", "-lock=false", "-no-color")
	var out map[string]struct {
		Value map[string][]string `json:"value"`
	}
	if err := json.Unmarshal(tfRun(t, bin, cli, dir, "output", "-json"), &out); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string][]string{
		"admin_ranges":  {"ipv4": {"192.0.2.10/32", "198.51.100.0/24"}, "ipv6": {"2001:db8:10::/48"}},
		"device_ranges": {"ipv4": {"203.0.113.0/24"}},
	}
	got := map[string]map[string][]string{}
	for k, v := range out {
		got[k] = v.Value
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("firewall source ranges by rule (-want +got):\n%s", diff)
	}
}

// TestHCLAzure: azurerm before 4.1 refuses the ed25519 admin key MyT
// generates, so versions.tf must exclude it; the VM, its data disk and its
// public IP are in the design's zone (a zonal VM attaches only disks of
// its zone).
func TestHCLAzure(t *testing.T) {
	m := parseModule(t, "azure")
	var constraint string
	for _, blk := range m.files["versions.tf"].Body.(*hclsyntax.Body).Blocks {
		if blk.Type != "terraform" {
			continue
		}
		for _, rp := range blk.Body.Blocks {
			if rp.Type != "required_providers" {
				continue
			}
			if obj, ok := rp.Body.Attributes["azurerm"].Expr.(*hclsyntax.ObjectConsExpr); ok {
				constraint, _ = strconv.Unquote(objectItems(m, obj)["version"])
			}
		}
	}
	for version, want := range map[string]bool{"4.0.1": false, "4.1.0": true, "4.40.0": true, "5.0.0": false} {
		if got := versionAllowed(t, constraint, version); got != want {
			t.Errorf("azurerm constraint %q allows %s: %v, want %v", constraint, version, got, want)
		}
	}
	for addr, attr := range map[string]string{
		"azurerm_linux_virtual_machine.this": "zone", "azurerm_managed_disk.data": "zone", "azurerm_public_ip.this": "zones",
	} {
		if src := attrSource(m, m.resources[addr], attr); src != "local."+attr {
			t.Errorf("%s.%s = %q, want local.%s (the design's zone)", addr, attr, src, attr)
		}
	}
	vars := render.TFVars(designNamed(t, "azure-influxdb"), "ssh-ed25519 AAAA test")
	if vars["zone"] != "2" {
		t.Errorf("tfvars zone = %v, want the design's 2", vars["zone"])
	}
}

// versionAllowed evaluates a provider version constraint of the form
// ">= a.b, < c.d" (the operators the modules use) for version.
func versionAllowed(t *testing.T, constraint, version string) bool {
	t.Helper()
	parse := func(s string) [3]int {
		var v [3]int
		for i, p := range strings.SplitN(strings.TrimSpace(s), ".", 3) {
			n, err := strconv.Atoi(p)
			if err != nil {
				t.Fatalf("version %q: %v", s, err)
			}
			v[i] = n
		}
		return v
	}
	cmpv := func(a, b [3]int) int { return slices.Compare(a[:], b[:]) }
	have := parse(version)
	for _, c := range strings.Split(constraint, ",") {
		c = strings.TrimSpace(c)
		op, ver, ok := strings.Cut(c, " ")
		if !ok {
			t.Fatalf("constraint %q: want \"OP VERSION\"", c)
		}
		r := cmpv(have, parse(ver))
		var holds bool
		switch op {
		case ">=":
			holds = r >= 0
		case ">":
			holds = r > 0
		case "<":
			holds = r < 0
		case "<=":
			holds = r <= 0
		default:
			t.Fatalf("constraint %q: operator %s", c, op)
		}
		if !holds {
			return false
		}
	}
	return true
}

// TestDefaultImageFollowsArchitecture: an Arm machine type boots only an
// arm64 image, so the default Ubuntu image follows the instance type
// (GCP: Tau T2A and Axion C4A; Azure: the "p" sizes), and an explicit
// image is kept. The modules' own locals are evaluated by a real
// OpenTofu/Terraform (no provider needed). AWS reads the architecture
// from the EC2 API (aws_ec2_instance_type), which cannot be reached here:
// TestHCLAWSImageArchitecture checks its wiring.
func TestDefaultImageFollowsArchitecture(t *testing.T) {
	bin := tfBinary(t)
	for _, c := range []struct {
		provider, design, image string
		want                    map[string]string // instance type ("" = size) -> local.image
	}{
		{"gcp", "gcp-mongodb", "", map[string]string{
			"":               "ubuntu-os-cloud/ubuntu-2404-lts-amd64",
			"t2a-standard-1": "ubuntu-os-cloud/ubuntu-2404-lts-arm64",
			"c4a-standard-4": "ubuntu-os-cloud/ubuntu-2404-lts-arm64",
			"n2-standard-2":  "ubuntu-os-cloud/ubuntu-2404-lts-amd64",
		}},
		{"gcp", "gcp-mongodb", "my-project/my-image", map[string]string{"t2a-standard-1": "my-project/my-image"}},
		{"azure", "azure-influxdb", "", map[string]string{
			"":                  `["Canonical","ubuntu-24_04-lts","server","latest"]`,
			"Standard_D2ps_v5":  `["Canonical","ubuntu-24_04-lts","server-arm64","latest"]`,
			"Standard_B2pts_v2": `["Canonical","ubuntu-24_04-lts","server-arm64","latest"]`,
			"Standard_E4pds_v6": `["Canonical","ubuntu-24_04-lts","server-arm64","latest"]`,
			"Standard_D4s_v5":   `["Canonical","ubuntu-24_04-lts","server","latest"]`,
			"Standard_E2bs_v5":  `["Canonical","ubuntu-24_04-lts","server","latest"]`,
		}},
	} {
		m := parseModule(t, c.provider)
		dir := t.TempDir()
		var locals []byte
		for _, blk := range m.files["main.tf"].Body.(*hclsyntax.Body).Blocks {
			if blk.Type == "locals" {
				locals = append(append(locals, blk.Range().SliceBytes(m.src["main.tf"])...), '\n')
			}
		}
		d := *designNamed(t, c.design)
		d.Spec.Target.Image = c.image
		vars, err := json.Marshal(render.TFVars(&d, "ssh-ed25519 AAAA test"))
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"variables.tf": m.src["variables.tf"], "locals.tf": locals, "terraform.tfvars.json": vars} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cli := filepath.Join(dir, "none.rc")
		tfRun(t, bin, cli, dir, "init", "-input=false", "-backend=false", "-no-color")
		for typ, want := range c.want {
			var out, errs strings.Builder
			cmd := exec.Command(bin, "console", "-var", "instance_type="+typ)
			cmd.Dir, cmd.Stdin, cmd.Stdout, cmd.Stderr = dir, strings.NewReader("jsonencode(local.image)\n"), &out, &errs
			cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s %q: console: %v\n%s%s", c.provider, typ, err, out.String(), errs.String())
			}
			// The console prints the JSON text as a quoted string.
			var got string
			if err := json.Unmarshal([]byte(strings.TrimSpace(out.String())), &got); err != nil {
				t.Fatalf("%s %q: %q: %v", c.provider, typ, out.String(), err)
			}
			if !strings.HasPrefix(want, "[") {
				want = strconv.Quote(want)
			}
			if got != want {
				t.Errorf("%s instance type %q, image %q: default image %s, want %s", c.provider, typ, c.image, got, want)
			}
		}
	}
}

// TestHCLAWSImageArchitecture: without an explicit image, the AWS module
// asks EC2 for the instance type's architectures and looks the Ubuntu
// AMI up by that architecture (Graviton types boot only arm64 AMIs).
func TestHCLAWSImageArchitecture(t *testing.T) {
	m := parseModule(t, "aws")
	src := string(m.src["main.tf"])
	for _, want := range []string{
		`data "aws_ec2_instance_type" "this" {`,
		`instance_type = local.instance_type`,
		`arm64 = contains(flatten(data.aws_ec2_instance_type.this[*].supported_architectures), "arm64")`,
		`ubuntu-noble-24.04-${local.arm64 ? "arm64" : "amd64"}-server-*`,
		`values = [local.arm64 ? "arm64" : "x86_64"]`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("aws main.tf lacks %q", want)
		}
	}
}
