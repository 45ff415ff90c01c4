package render_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/render"
)

// tfBinary returns tofu or terraform.
func tfBinary(t *testing.T) string {
	return needTool(t, "the rendered modules are checked by a real OpenTofu/Terraform", "tofu", "terraform")
}

// tfBinaries returns every OpenTofu/Terraform there is: tofu and terraform
// on PATH and the OpenTofu that `scripts/testenv up` built, so that plans
// are checked with each.
func tfBinaries(t *testing.T) []string {
	var bins []string
	for _, n := range []string{"terraform", "tofu"} {
		if p, err := exec.LookPath(n); err == nil {
			bins = append(bins, p)
		}
	}
	if e, err := testenv.Load(); err == nil {
		if p := e.Tool("tofu").Path; p != "" && !slices.Contains(bins, p) {
			if _, err := os.Stat(p); err == nil {
				bins = append(bins, p)
			}
		}
	}
	need(t, "tofu or terraform", len(bins) > 0, "the rendered modules are checked by a real OpenTofu/Terraform (`scripts/testenv up` builds tofu)")
	return bins
}

// tfMirror is testenv.ProviderMirror for one provider.
func tfMirror(t *testing.T, provider string) (cliConfig string) {
	t.Helper()
	return testenv.ProviderMirror(t, provider)
}

// tfCommand is the tool in dir with a clean, offline environment.
func tfCommand(ctx context.Context, t *testing.T, bin, cli, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"TF_CLI_CONFIG_FILE=" + cli,
		"TF_IN_AUTOMATION=1",
		"CHECKPOINT_DISABLE=1",
		"TF_DATA_DIR=" + filepath.Join(dir, ".terraform"),
	}
	return cmd
}

// tfRun runs the tool in dir with a clean, offline environment.
func tfRun(t *testing.T, bin, cli, dir string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := tfCommand(ctx, t, bin, cli, dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", filepath.Base(bin), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

// testOverride is written next to the module only in tests: fake
// credentials, skip the provider's start-up API calls, and point every
// endpoint at a closed loopback port so nothing can leave the machine.
var testOverride = map[string]string{
	myt.ProviderAWS: `provider "aws" {
  access_key                  = "AKIAIOSFODNN7EXAMPLE"
  secret_key                  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    ec2 = "http://127.0.0.1:1"
    sts = "http://127.0.0.1:1"
    iam = "http://127.0.0.1:1"
  }
}
`,
	myt.ProviderOpenStack: `provider "openstack" {
  auth_url     = "http://127.0.0.1:1/v3"
  user_name    = "myt-test"
  password     = "not-a-secret"
  tenant_name  = "myt-test"
  domain_name  = "Default"
  delayed_auth = true
}
`,
}

type planJSON struct {
	ResourceChanges []struct {
		Address string `json:"address"`
		Type    string `json:"type"`
		Change  struct {
			Actions []string       `json:"actions"`
			After   map[string]any `json:"after"`
		} `json:"change"`
	} `json:"resource_changes"`
}

// planBundle renders d, runs bin's init, validate and plan on infra/ and
// returns the plan as JSON.
func planBundle(t *testing.T, bin string, d *myt.Design) planJSON {
	t.Helper()
	cli := tfMirror(t, d.Spec.Target.Provider)
	dir := filepath.Join(writeBundle(t, mustRender(t, d)), "infra")
	if err := os.WriteFile(filepath.Join(dir, "myt_test_override.tf"), []byte(testOverride[d.Spec.Target.Provider]), 0o644); err != nil {
		t.Fatal(err)
	}
	tfRun(t, bin, cli, dir, "init", "-input=false", "-backend=false", "-no-color")
	tfRun(t, bin, cli, dir, "validate", "-no-color")
	tfRun(t, bin, cli, dir, "plan", "-input=false", "-lock=false", "-refresh=false", "-no-color", "-out=plan.bin")
	out := tfRun(t, bin, cli, dir, "show", "-json", "plan.bin")
	var p planJSON
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("plan json: %v", err)
	}
	for _, rc := range p.ResourceChanges {
		if !slices.Equal(rc.Change.Actions, []string{"create"}) && !slices.Equal(rc.Change.Actions, []string{"read"}) {
			t.Errorf("%s: actions %v, want create", rc.Address, rc.Change.Actions)
		}
	}
	return p
}

func designNamed(t *testing.T, name string) *myt.Design {
	t.Helper()
	for _, c := range designs(t) {
		if c.name == name {
			return c.d
		}
	}
	t.Fatalf("no design %s", name)
	return nil
}

func addresses(p planJSON) []string {
	var a []string
	for _, rc := range p.ResourceChanges {
		a = append(a, rc.Address)
	}
	sort.Strings(a)
	return a
}

// ingressCIDRs maps each planned ingress port to the networks it opens to.
func ingressCIDRs(t *testing.T, p planJSON, typ string, cidrKeys []string, portKey string) map[int][]string {
	t.Helper()
	out := map[int][]string{}
	for _, rc := range p.ResourceChanges {
		if rc.Type != typ {
			continue
		}
		port := int(rc.Change.After[portKey].(float64))
		for _, k := range cidrKeys {
			if s, ok := rc.Change.After[k].(string); ok && s != "" {
				out[port] = append(out[port], s)
			}
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

func TestTofuPlanAWS(t *testing.T) {
	d := designNamed(t, "aws-timescaledb")
	for _, bin := range tfBinaries(t) {
		t.Run(filepath.Base(bin), func(t *testing.T) { checkPlanAWS(t, d, planBundle(t, bin, d)) })
	}
}

func checkPlanAWS(t *testing.T, d *myt.Design, p planJSON) {
	want := []string{
		"aws_ebs_volume.data",
		"aws_eip.this",
		"aws_instance.this",
		"aws_internet_gateway.this",
		"aws_key_pair.this",
		"aws_route_table.this",
		"aws_route_table_association.this",
		"aws_security_group.this",
		"aws_subnet.this",
		"aws_volume_attachment.data",
		"aws_vpc.this",
		"aws_vpc_security_group_egress_rule.all",
		`aws_vpc_security_group_ingress_rule.this["admin-22-2001:db8:7::/48"]`,
		`aws_vpc_security_group_ingress_rule.this["admin-22-203.0.113.7/32"]`,
		`aws_vpc_security_group_ingress_rule.this["admin-3000-2001:db8:7::/48"]`,
		`aws_vpc_security_group_ingress_rule.this["admin-3000-203.0.113.7/32"]`,
		`aws_vpc_security_group_ingress_rule.this["device-5671-0.0.0.0/0"]`,
		`aws_vpc_security_group_ingress_rule.this["device-8883-0.0.0.0/0"]`,
	}
	if diff := cmp.Diff(want, addresses(p)); diff != "" {
		t.Errorf("planned resources (-want +got):\n%s", diff)
	}
	// What the security group will really open, as planned by the provider.
	got := ingressCIDRs(t, p, "aws_vpc_security_group_ingress_rule", []string{"cidr_ipv4", "cidr_ipv6"}, "from_port")
	wantPorts := map[int][]string{
		22:   {"2001:db8:7::/48", "203.0.113.7/32"},
		3000: {"2001:db8:7::/48", "203.0.113.7/32"},
		5671: {"0.0.0.0/0"},
		8883: {"0.0.0.0/0"},
	}
	if diff := cmp.Diff(wantPorts, got); diff != "" {
		t.Errorf("planned ingress (-want +got):\n%s", diff)
	}
	for _, rc := range p.ResourceChanges {
		switch rc.Address {
		case "aws_ebs_volume.data":
			if rc.Change.After["size"].(float64) != 20 || rc.Change.After["encrypted"] != true {
				t.Errorf("data volume: %v", rc.Change.After)
			}
		case "aws_instance.this":
			if rc.Change.After["instance_type"] != "t3.small" || rc.Change.After["ami"] != "ami-0123456789abcdef0" {
				t.Errorf("instance: type %v ami %v", rc.Change.After["instance_type"], rc.Change.After["ami"])
			}
		case "aws_key_pair.this":
			want := strings.TrimSpace(string(mustRender(t, d).File("ssh/id_ed25519.pub").Data))
			if rc.Change.After["public_key"] != want {
				t.Errorf("key pair public key %v, want %s", rc.Change.After["public_key"], want)
			}
		}
	}
}

func TestTofuPlanOpenStack(t *testing.T) {
	d := designNamed(t, "openstack-mysql")
	for _, bin := range tfBinaries(t) {
		t.Run(filepath.Base(bin), func(t *testing.T) { checkPlanOpenStack(t, d, planBundle(t, bin, d)) })
	}
}

func checkPlanOpenStack(t *testing.T, d *myt.Design, p planJSON) {
	want := []string{
		"openstack_blockstorage_volume_v3.data",
		"openstack_compute_instance_v2.this",
		"openstack_compute_keypair_v2.this",
		"openstack_compute_volume_attach_v2.data",
		"openstack_networking_floatingip_associate_v2.this",
		"openstack_networking_floatingip_v2.this",
		"openstack_networking_port_v2.this",
		`openstack_networking_secgroup_rule_v2.ingress["admin-22-198.51.100.0/24"]`,
		`openstack_networking_secgroup_rule_v2.ingress["admin-3000-198.51.100.0/24"]`,
		`openstack_networking_secgroup_rule_v2.ingress["device-8883-192.0.2.0/24"]`,
		`openstack_networking_secgroup_rule_v2.ingress["device-8883-198.51.100.0/24"]`,
		"openstack_networking_secgroup_v2.this",
	}
	if diff := cmp.Diff(want, addresses(p)); diff != "" {
		t.Errorf("planned resources (-want +got):\n%s", diff)
	}
	got := ingressCIDRs(t, p, "openstack_networking_secgroup_rule_v2", []string{"remote_ip_prefix"}, "port_range_min")
	wantPorts := map[int][]string{22: {"198.51.100.0/24"}, 3000: {"198.51.100.0/24"}, 8883: {"192.0.2.0/24", "198.51.100.0/24"}}
	if diff := cmp.Diff(wantPorts, got); diff != "" {
		t.Errorf("planned ingress (-want +got):\n%s", diff)
	}
	for _, rc := range p.ResourceChanges {
		switch rc.Address {
		case "openstack_compute_instance_v2.this":
			if rc.Change.After["flavor_name"] != "m1.medium" {
				t.Errorf("flavor %v, want m1.medium (size medium)", rc.Change.After["flavor_name"])
			}
		case "openstack_blockstorage_volume_v3.data":
			if rc.Change.After["size"].(float64) != 50 {
				t.Errorf("volume size %v", rc.Change.After["size"])
			}
		case "openstack_networking_floatingip_v2.this":
			if rc.Change.After["pool"] != "ext-net" {
				t.Errorf("floating IP pool %v, want ext-net", rc.Change.After["pool"])
			}
		case "openstack_networking_port_v2.this":
			if rc.Change.After["network_id"] != d.Spec.Target.Network {
				t.Errorf("port on network %v, want the design's %s", rc.Change.After["network_id"], d.Spec.Target.Network)
			}
		}
	}
}

// planRefs maps each resource's attribute (or nested block attribute, as
// "network.port") to the addresses its configured expression refers to,
// as the plan's configuration section records them.
func planRefs(t *testing.T, bin, cli, dir string) map[string]map[string][]string {
	t.Helper()
	var p struct {
		Configuration struct {
			RootModule struct {
				Resources []struct {
					Address     string                     `json:"address"`
					Expressions map[string]json.RawMessage `json:"expressions"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"configuration"`
	}
	if err := json.Unmarshal(tfRun(t, bin, cli, dir, "show", "-json", "plan.bin"), &p); err != nil {
		t.Fatalf("plan json: %v", err)
	}
	type expr struct {
		References []string `json:"references"`
	}
	out := map[string]map[string][]string{}
	for _, r := range p.Configuration.RootModule.Resources {
		refs := map[string][]string{}
		for k, raw := range r.Expressions {
			var e expr
			if json.Unmarshal(raw, &e) == nil && e.References != nil {
				refs[k] = e.References
				continue
			}
			// A nested block: a list of objects of expressions.
			var blocks []map[string]expr
			if json.Unmarshal(raw, &blocks) == nil {
				for _, b := range blocks {
					for bk, be := range b {
						refs[k+"."+bk] = append(refs[k+"."+bk], be.References...)
					}
				}
			}
		}
		out[r.Address] = refs
	}
	return out
}

// TestTofuPlanOpenStackFloatingIPPort plans the openstack module with the
// real provider v3.4.0 and checks, in the plan's configuration, that the
// floating IP is associated with the port the module creates (and the
// instance is attached through that same port, which carries the
// security group). The module used to take the instance's network[0].port,
// which this provider leaves empty unless it is set.
func TestTofuPlanOpenStackFloatingIPPort(t *testing.T) {
	bin := tfBinaries(t)[0]
	d := designNamed(t, "openstack-mysql")
	dir, cli := appliedModule(t, bin, d, false, "")
	planActions(t, bin, cli, dir)
	refs := planRefs(t, bin, cli, dir)
	for _, c := range []struct{ addr, attr, want string }{
		{"openstack_networking_floatingip_associate_v2.this", "port_id", "openstack_networking_port_v2.this.id"},
		{"openstack_compute_instance_v2.this", "network.port", "openstack_networking_port_v2.this.id"},
		{"openstack_networking_port_v2.this", "security_group_ids", "openstack_networking_secgroup_v2.this.id"},
	} {
		if got := refs[c.addr][c.attr]; !slices.Contains(got, c.want) {
			t.Errorf("%s.%s refers to %v, want %s", c.addr, c.attr, got, c.want)
		}
	}
	if got := refs["openstack_compute_instance_v2.this"]["security_groups"]; got != nil {
		t.Errorf("the instance sets security_groups (%v): Nova does not apply them to a port it is given", got)
	}
}

// TestTofuFmtAndValidateAll runs `fmt -check` on every provider's module
// (azure and gcp: their providers cannot be obtained here, so this and the
// HCL parse test are what checks them).
func TestTofuFmtAll(t *testing.T) {
	bin := tfBinary(t)
	for _, p := range []string{"aws", "openstack", "azure", "gcp"} {
		t.Run(p, func(t *testing.T) {
			mod, err := render.InfraModule(p, false)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			for name, b := range mod {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tfRun(t, bin, filepath.Join(dir, "none.rc"), dir, "fmt", "-check", "-diff", "-no-color")
		})
	}
}

// tfRunFails runs the tool like tfRun but expects it to fail, and returns
// what it printed.
func tfRunFails(t *testing.T, bin, cli, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := tfCommand(ctx, t, bin, cli, dir, args...).CombinedOutput()
	if err == nil {
		t.Fatalf("%s %s succeeded, want a failure\n%s", filepath.Base(bin), strings.Join(args, " "), out)
	}
	return string(out)
}

// appliedModule renders d (with opts changed by edit), writes its infra/
// with the offline provider override and, when state names a recorded
// state in testdata/tfstate, that state as terraform.tfstate, as an apply
// would have left it. It runs init and returns the directory and the CLI
// config.
func appliedModule(t *testing.T, bin string, d *myt.Design, deleteData bool, state string) (dir, cli string) {
	t.Helper()
	p := d.Spec.Target.Provider
	cli = tfMirror(t, p)
	opts := testOptions(d)
	opts.DeleteData = deleteData
	b, err := render.Render(context.Background(), d, opts)
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(writeBundle(t, b), "infra")
	if err := os.WriteFile(filepath.Join(dir, "myt_test_override.tf"), []byte(testOverride[p]), 0o644); err != nil {
		t.Fatal(err)
	}
	if state != "" {
		src, err := os.ReadFile(filepath.Join("testdata", "tfstate", state))
		if err != nil {
			t.Fatal(err)
		}
		// The state names its provider by registry host, which differs
		// between Terraform and OpenTofu.
		registry := "registry.terraform.io"
		if strings.Contains(filepath.Base(bin), "tofu") {
			registry = "registry.opentofu.org"
		}
		pub := strings.TrimSpace(string(b.File("ssh/id_ed25519.pub").Data))
		st := strings.NewReplacer("@REGISTRY@", registry, "@SSH_PUBLIC_KEY@", pub).Replace(string(src))
		if err := os.WriteFile(filepath.Join(dir, "terraform.tfstate"), []byte(st), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tfRun(t, bin, cli, dir, "init", "-input=false", "-backend=false", "-no-color")
	return dir, cli
}

// planActions runs plan with args (offline: no refresh) and returns each
// resource's planned actions.
func planActions(t *testing.T, bin, cli, dir string, args ...string) map[string][]string {
	t.Helper()
	tfRun(t, bin, cli, dir, append([]string{"plan", "-input=false", "-lock=false", "-refresh=false", "-no-color", "-out=plan.bin"}, args...)...)
	var p planJSON
	if err := json.Unmarshal(tfRun(t, bin, cli, dir, "show", "-json", "plan.bin"), &p); err != nil {
		t.Fatalf("plan json: %v", err)
	}
	out := map[string][]string{}
	for _, rc := range p.ResourceChanges {
		out[rc.Address] = rc.Change.Actions
	}
	return out
}

func replaced(actions []string) bool {
	return slices.Contains(actions, "delete") && slices.Contains(actions, "create")
}

// TestTofuPlanAWSReplaceKeepsData plans, with the real AWS provider and a
// state recorded as an apply leaves it (testdata/tfstate), what a new AMI,
// a new size or a taint does: the instance is replaced. The data volume
// must stay as it is (no-op); only its attachment follows the instance.
// When the volume took its zone from the instance, this plan replaced the
// volume (and with it the data).
func TestTofuPlanAWSReplaceKeepsData(t *testing.T) {
	bin := tfBinaries(t)[0]
	dir, cli := appliedModule(t, bin, designNamed(t, "aws-timescaledb"), false, "aws-applied.tfstate")
	got := planActions(t, bin, cli, dir, "-replace=aws_instance.this")
	if !replaced(got["aws_instance.this"]) {
		t.Errorf("aws_instance.this: %v, want replaced", got["aws_instance.this"])
	}
	if !replaced(got["aws_volume_attachment.data"]) {
		t.Errorf("aws_volume_attachment.data: %v, want replaced (it names the old instance)", got["aws_volume_attachment.data"])
	}
	for _, addr := range []string{"aws_ebs_volume.data", "aws_subnet.this", "aws_vpc.this", "aws_security_group.this", "aws_key_pair.this"} {
		if !slices.Equal(got[addr], []string{"no-op"}) {
			t.Errorf("%s: %v, want no-op (untouched)", addr, got[addr])
		}
	}
}

// TestTofuDestroyGuardsData checks the data volume's guard with the real
// AWS provider against the recorded state: the bundle a deploy renders
// cannot plan the volume's destruction (`tofu destroy` by hand included);
// the one a destroy with DeleteData renders plans it; and a destroy that
// keeps the data (the volume leaves the state first, as the deploy job
// does) plans the rest with the guard on.
func TestTofuDestroyGuardsData(t *testing.T) {
	bin := tfBinaries(t)[0]
	d := designNamed(t, "aws-timescaledb")
	t.Run("guarded", func(t *testing.T) {
		dir, cli := appliedModule(t, bin, d, false, "aws-applied.tfstate")
		out := tfRunFails(t, bin, cli, dir, "plan", "-destroy", "-input=false", "-lock=false", "-refresh=false", "-no-color")
		if !strings.Contains(out, "prevent_destroy") || !strings.Contains(out, "aws_ebs_volume.data") {
			t.Errorf("destroy plan failed, but not on the data volume's prevent_destroy:\n%s", out)
		}
		// The deploy job's keep-data destroy: forget the volume, then plan.
		tfRun(t, bin, cli, dir, "state", "rm", "-lock=false", "aws_ebs_volume.data")
		got := planActions(t, bin, cli, dir, "-destroy")
		if _, ok := got["aws_ebs_volume.data"]; ok {
			t.Errorf("the forgotten volume is in the plan: %v", got["aws_ebs_volume.data"])
		}
		for _, addr := range []string{"aws_instance.this", "aws_volume_attachment.data", "aws_subnet.this"} {
			if !slices.Equal(got[addr], []string{"delete"}) {
				t.Errorf("%s: %v, want delete", addr, got[addr])
			}
		}
	})
	t.Run("delete-data", func(t *testing.T) {
		dir, cli := appliedModule(t, bin, d, true, "aws-applied.tfstate")
		got := planActions(t, bin, cli, dir, "-destroy")
		if !slices.Equal(got["aws_ebs_volume.data"], []string{"delete"}) {
			t.Errorf("aws_ebs_volume.data: %v, want delete", got["aws_ebs_volume.data"])
		}
	})
}
