package render_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// proxyScript stands in for docker-proxy and the container's server: it
// listens on each given address and port, writes its name to every
// client and hangs up. Like docker-proxy it takes one socket per address
// family ([::] is IPv6 only), so a port is open over IPv4 and IPv6 alike.
const proxyScript = `
import select, socket, sys
name, socks = sys.argv[1].encode(), []
for spec in sys.argv[2:]:
    host, port = spec.rsplit(":", 1)
    host = host.strip("[]")
    six = ":" in host
    s = socket.socket(socket.AF_INET6 if six else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if six:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, int(port)))
    s.listen(64)
    socks.append(s)
while True:
    for s in select.select(socks, [], [])[0]:
        c, _ = s.accept()
        c.sendall(name)
        c.close()
`

// TestFirewallFiltersEveryPath applies the rendered host firewall inside a
// network namespace made for this test (the "host"; a veth pair in
// 10.250.127.248/30 and fd6d:7974:fa::/64, the test's process being the
// client) and connects, over IPv4 and IPv6, to every path a port can be
// reached by on a Docker host:
//   - SSH, a listener of the host itself;
//   - Grafana (3000) over IPv4 through DNAT to a second namespace behind
//     the first (the container), as Docker's NAT publishes ports;
//   - Grafana over IPv6, the broker (8883) over both, and Grafana over
//     IPv4 once the NAT table is gone: to a listener of the host on
//     0.0.0.0 and [::], as docker-proxy serves the ports Docker does not
//     NAT (IPv6 clients when the daemon has no IPv6 NAT).
//
// Each port must be reachable exactly from its own networks (adminCIDRs
// for SSH and Grafana, deviceCIDRs for the broker) on every path, and the
// ports published on loopback only must stay reachable from the host.
func TestFirewallFiltersEveryPath(t *testing.T) {
	playbook := needTool(t, "the firewall template is rendered by the real Ansible", "ansible-playbook")
	nft := needTool(t, "the rendered firewall is applied with nft (apt-get install nftables)", "nft")
	ip := needTool(t, "the test makes a network namespace (apt-get install iproute2)", "ip")
	python := needTool(t, "the listeners are python3", "python3")
	need(t, "root", os.Geteuid() == 0, "network namespaces need root")

	ns := fmt.Sprintf("myt-rfw%d", os.Getpid()%100000)
	hostIf, nsIf := ns+"h", ns+"n"
	const (
		clientNet4, hostAddr, nsAddr   = "10.250.127.248/30", "10.250.127.249", "10.250.127.250"
		clientNet6, hostAddr6, nsAddr6 = "fd6d:7974:fa::/64", "fd6d:7974:fa::1", "fd6d:7974:fa::2"
	)
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
	sh("addr", "add", hostAddr6+"/64", "dev", hostIf, "nodad")
	sh("link", "set", hostIf, "up")
	sh("-n", ns, "addr", "add", nsAddr+"/30", "dev", nsIf)
	sh("-n", ns, "addr", "add", nsAddr6+"/64", "dev", nsIf, "nodad")
	sh("-n", ns, "link", "set", nsIf, "up")
	sh("-n", ns, "link", "set", "lo", "up")

	// The "container": a second namespace behind the first.
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

	ctx, cancel := context.WithCancel(context.Background())
	listen := func(netns, name string, addrs ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, ip, append([]string{"netns", "exec", netns, python, "-c", proxyScript, name}, addrs...)...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	}
	// The host's own SSH, docker-proxy's sockets for Grafana and the
	// broker, and the ports Docker publishes on loopback only.
	listen(ns, "host", "0.0.0.0:22", "[::]:22", "0.0.0.0:3000", "[::]:3000", "0.0.0.0:8883", "[::]:8883",
		"127.0.0.1:15672", "127.0.0.1:18080")
	listen(ctr, "container", "0.0.0.0:3000")

	// Docker's NAT for IPv4 only, as a daemon without ip6tables has it.
	natFile := filepath.Join(t.TempDir(), "dnat.nft")
	nat := "table ip dockerlike {\n chain prerouting {\n  type nat hook prerouting priority dstnat; policy accept;\n  tcp dport 3000 dnat to " + ctrAddr + ":3000\n }\n}\n"
	if err := os.WriteFile(natFile, []byte(nat), 0o644); err != nil {
		t.Fatal(err)
	}
	nftIn := func(args ...string) {
		t.Helper()
		if res, err := runTool(t, "", nil, ip, append([]string{"netns", "exec", ns, nft}, args...)...); err != nil {
			t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, res)
		}
	}

	// dial returns what the listener at addr says, "" if unreachable.
	dial := func(addr string) string {
		c, err := net.DialTimeout("tcp", addr, 400*time.Millisecond)
		if err != nil {
			return ""
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	type probe struct{ name, addr, via string }
	ssh4 := probe{"SSH over IPv4", net.JoinHostPort(nsAddr, "22"), "host"}
	ssh6 := probe{"SSH over IPv6", net.JoinHostPort(nsAddr6, "22"), "host"}
	grafanaNAT4 := probe{"Grafana over IPv4 through Docker's NAT", net.JoinHostPort(nsAddr, "3000"), "container"}
	grafanaProxy4 := probe{"Grafana over IPv4 through docker-proxy", net.JoinHostPort(nsAddr, "3000"), "host"}
	grafana6 := probe{"Grafana over IPv6 through docker-proxy", net.JoinHostPort(nsAddr6, "3000"), "host"}
	broker4 := probe{"broker over IPv4 through docker-proxy", net.JoinHostPort(nsAddr, "8883"), "host"}
	broker6 := probe{"broker over IPv6 through docker-proxy", net.JoinHostPort(nsAddr6, "8883"), "host"}
	// check dials every probe at once (a dropped one costs a timeout) and
	// reports each whose reachability is not the wanted one.
	check := func(label string, open map[probe]bool) {
		t.Helper()
		got := make(map[probe]string, len(open))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for p := range open {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := dial(p.addr)
				mu.Lock()
				got[p] = s
				mu.Unlock()
			}()
		}
		wg.Wait()
		for p, want := range open {
			switch {
			case want && got[p] != p.via:
				t.Errorf("%s: %s (%s): answered %q, want %q", label, p.name, p.addr, got[p], p.via)
			case !want && got[p] != "":
				t.Errorf("%s: %s (%s): reached %q, want dropped", label, p.name, p.addr, got[p])
			}
		}
	}
	// Before any firewall every path is open.
	nftIn("-f", natFile)
	deadline := time.Now().Add(10 * time.Second)
	for dial(ssh4.addr) != "host" || dial(grafanaNAT4.addr) != "container" {
		if time.Now().After(deadline) {
			t.Fatal("listeners in the namespaces never answered")
		}
		time.Sleep(100 * time.Millisecond)
	}
	check("no firewall", map[probe]bool{ssh4: true, ssh6: true, grafanaNAT4: true, grafana6: true, broker4: true, broker6: true})
	if t.Failed() {
		t.FailNow()
	}

	const (
		client   = `["` + clientNet4 + `", "` + clientNet6 + `"]`
		admin    = `["192.0.2.0/24", "2001:db8::/32"]`
		devices  = `["198.51.100.0/24", "2001:db8:1::/48"]`
		ipv4Only = `["` + hostAddr + `/32"]`
	)
	cases := []struct {
		name                    string
		adminCIDRs, deviceCIDRs string
		admin4, admin6          bool // SSH and Grafana
		device4, device6        bool // broker
	}{
		{"client in adminCIDRs and deviceCIDRs", client, client, true, true, true, true},
		{"client in deviceCIDRs only", admin, client, false, false, true, true},
		{"client in adminCIDRs only", client, devices, true, true, false, false},
		{"only the client's IPv4 address listed", ipv4Only, `["0.0.0.0/0"]`, true, false, true, false},
		{"client in neither", admin, devices, false, false, false, false},
	}

	// One Ansible run renders the template once per policy (Ansible takes
	// seconds to start), with the design's group vars as the play has them.
	d := designNamed(t, "aws-timescaledb") // broker with TLS: device port 8883
	dir := filepath.Join(writeBundle(t, mustRender(t, d)), "ansible")
	outDir := t.TempDir()
	var vars []string
	for i, c := range cases {
		vars = append(vars, fmt.Sprintf(`{"out": "%s/%d.nft", "admin": %s, "device": %s}`, outDir, i, c.adminCIDRs, c.deviceCIDRs))
	}
	play := fmt.Sprintf(`- hosts: localhost
  connection: local
  gather_facts: false
  vars_files: [%q]
  tasks:
    - ansible.builtin.template:
        src: %q
        dest: "{{ item.out }}"
        mode: "0644"
      vars:
        myt_admin_cidrs: "{{ item.admin }}"
        myt_device_cidrs: "{{ item.device }}"
      loop: "{{ policies }}"
`, filepath.Join(dir, "group_vars", "all.yml"), filepath.Join(dir, "roles", "base", "templates", "firewall.nft.j2"))
	playFile := filepath.Join(t.TempDir(), "render.yml")
	if err := os.WriteFile(playFile, []byte(play), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"ANSIBLE_LOCAL_TEMP=" + t.TempDir(), "ANSIBLE_HOME=" + t.TempDir(), "ANSIBLE_NOCOLOR=1"}
	if res, err := runTool(t, dir, env, playbook, "-i", "localhost,", "-e", `{"policies": [`+strings.Join(vars, ", ")+`]}`, playFile); err != nil {
		t.Fatalf("template: %v\n%s", err, res)
	}
	apply := func(i int) {
		t.Helper()
		out := filepath.Join(outDir, fmt.Sprint(i)+".nft")
		nftIn("-c", "-f", out)
		nftIn("-f", out) // applying again replaces the table
	}

	for i, c := range cases {
		apply(i)
		open := map[probe]bool{ssh4: c.admin4, ssh6: c.admin6, grafana6: c.admin6, broker4: c.device4, broker6: c.device6}
		open[grafanaNAT4] = c.admin4
		check(c.name+", Docker's NAT", open)
		delete(open, grafanaNAT4)
		open[grafanaProxy4] = c.admin4
		nftIn("delete", "table", "ip", "dockerlike")
		check(c.name+", no NAT", open)
		nftIn("-f", natFile)
	}

	// Loopback is never filtered, though every network is shut out (the
	// last policy): the ports Docker publishes on 127.0.0.1 only (RabbitMQ
	// management, worker API) stay reachable from the host itself (ssh -L),
	// and so does Grafana's docker-proxy socket.
	for _, port := range []string{"15672", "18080", "3000"} {
		res, err := runTool(t, "", nil, ip, "netns", "exec", ns, python, "-c",
			"import socket,sys; print(socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2).recv(64).decode())", port)
		if err != nil || strings.TrimSpace(res) != "host" {
			t.Errorf("loopback port %s from the host: %v %q, want reachable", port, err, res)
		}
	}
}
