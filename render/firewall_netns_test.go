package render_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFirewallFiltersSSH applies the rendered host firewall inside a
// network namespace made for this test (a veth pair in 10.250.127.248/30)
// and connects to a listener on port 22 there: allowed from an admin
// network, dropped from any other. A second namespace behind the first
// plays a container whose port 3000 (Grafana) the "host" publishes with
// DNAT, as Docker does: it too is reachable only from admin networks.
func TestFirewallFiltersSSH(t *testing.T) {
	ansible := needTool(t, "the firewall template is rendered by the real Ansible", "ansible")
	nft := needTool(t, "the rendered firewall is applied with nft (apt-get install nftables)", "nft")
	ip := needTool(t, "the test makes a network namespace (apt-get install iproute2)", "ip")
	need(t, "root", os.Geteuid() == 0, "network namespaces need root")

	ns := fmt.Sprintf("myt-rfw%d", os.Getpid()%100000)
	hostIf, nsIf := ns+"h", ns+"n"
	const hostAddr, nsAddr = "10.250.127.249", "10.250.127.250"
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		need(t, "network namespaces", false, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		_ = exec.Command(ip, "link", "del", hostIf).Run()
		_ = exec.Command(ip, "netns", "del", ns).Run()
	})
	sh("link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	sh("link", "set", nsIf, "netns", ns)
	sh("addr", "add", hostAddr+"/30", "dev", hostIf)
	sh("link", "set", hostIf, "up")
	sh("-n", ns, "addr", "add", nsAddr+"/30", "dev", nsIf)
	sh("-n", ns, "link", "set", nsIf, "up")
	sh("-n", ns, "link", "set", "lo", "up")

	// A listener on port 22 inside the namespace.
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, ip, "netns", "exec", ns, "python3", "-m", "http.server", "--bind", "0.0.0.0", "22")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = srv.Wait() })
	reach := func() bool {
		c, err := net.DialTimeout("tcp", nsAddr+":22", 700*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	deadline := time.Now().Add(10 * time.Second)
	for !reach() {
		if time.Now().After(deadline) {
			t.Fatal("listener in the namespace never answered")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The "container": a second namespace behind the first, reached
	// through DNAT of port 3000, as Docker publishes ports.
	ctr, ctrHost, ctrIf := ns+"c", ns+"x", ns+"y"
	const nsInner, ctrAddr = "10.250.127.245", "10.250.127.246"
	if out, err := exec.Command(ip, "netns", "add", ctr).CombinedOutput(); err != nil {
		t.Fatalf("netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ctr).Run() })
	sh("link", "add", ctrHost, "type", "veth", "peer", "name", ctrIf)
	sh("link", "set", ctrHost, "netns", ns)
	sh("link", "set", ctrIf, "netns", ctr)
	sh("-n", ns, "addr", "add", nsInner+"/30", "dev", ctrHost)
	sh("-n", ns, "link", "set", ctrHost, "up")
	sh("-n", ctr, "addr", "add", ctrAddr+"/30", "dev", ctrIf)
	sh("-n", ctr, "link", "set", ctrIf, "up")
	sh("-n", ctr, "link", "set", "lo", "up")
	sh("-n", ctr, "route", "add", "default", "via", nsInner)
	if out, err := exec.Command(ip, "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("ip_forward: %v %s", err, out)
	}
	dnat := "table ip dockerlike {\n chain prerouting {\n  type nat hook prerouting priority dstnat; policy accept;\n  tcp dport 3000 dnat to " + ctrAddr + ":3000\n }\n}\n"
	dnatFile := filepath.Join(t.TempDir(), "dnat.nft")
	if err := os.WriteFile(dnatFile, []byte(dnat), 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := runTool(t, "", nil, ip, "netns", "exec", ns, nft, "-f", dnatFile); err != nil {
		t.Fatalf("dnat: %v\n%s", err, res)
	}
	srv2 := exec.CommandContext(ctx, ip, "netns", "exec", ctr, "python3", "-m", "http.server", "--bind", "0.0.0.0", "3000")
	if err := srv2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = srv2.Wait() })
	reachGrafana := func() bool {
		c, err := net.DialTimeout("tcp", nsAddr+":3000", 700*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	deadline = time.Now().Add(10 * time.Second)
	for !reachGrafana() {
		if time.Now().After(deadline) {
			t.Fatal("published port 3000 never answered before the firewall")
		}
		time.Sleep(100 * time.Millisecond)
	}

	d := designNamed(t, "aws-timescaledb")
	dir := filepath.Join(writeBundle(t, mustRender(t, d)), "ansible")
	apply := func(adminCIDRs string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "firewall.nft")
		env := []string{"ANSIBLE_LOCAL_TEMP=" + t.TempDir(), "ANSIBLE_HOME=" + t.TempDir(), "ANSIBLE_NOCOLOR=1"}
		res, err := runTool(t, dir, env, ansible, "localhost", "-c", "local", "-i", "localhost,",
			"-e", "@group_vars/all.yml", "-e", `{"myt_admin_cidrs": `+adminCIDRs+`}`, "-m", "ansible.builtin.template",
			"-a", "src=roles/base/templates/firewall.nft.j2 dest="+out+" mode=0644")
		if err != nil {
			t.Fatalf("template: %v\n%s", err, res)
		}
		if res, err := runTool(t, "", nil, ip, "netns", "exec", ns, nft, "-f", out); err != nil {
			t.Fatalf("nft -f: %v\n%s", err, res)
		}
	}

	apply(`["` + hostAddr + `/32", "2001:db8::/32"]`)
	if !reach() || !reachGrafana() {
		t.Errorf("from an admin network: SSH %v, published Grafana %v; want both reachable", reach(), reachGrafana())
	}
	apply(`["192.0.2.0/24"]`)
	if reach() || reachGrafana() {
		t.Errorf("from another network: SSH %v, published Grafana %v; want both dropped", reach(), reachGrafana())
	}
	apply(`["10.250.127.248/30"]`) // applying again replaces the table
	if !reach() || !reachGrafana() {
		t.Error("dropped after re-applying with the admin network")
	}
}
