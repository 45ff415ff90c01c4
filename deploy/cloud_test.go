package deploy_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/render"
	"github.com/myt-iot/myt/sqlite"
)

// Provider settings for plans with fake credentials: no request leaves
// this machine (endpoints on a closed loopback port, validation skipped).
var offlineProviders = map[string]string{
	myt.ProviderAWS: `provider "aws" {
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
  delayed_auth = true
}
`,
}

const (
	fakeAWSKey    = "AKIAIOSFODNN7EXAMPLE"
	fakeAWSSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	fakeOSPass    = "openstack-fake-password-81f3"
)

// newRunner is a Runner over s with the given tools; health checks give
// up after health (5 s when zero).
func newRunner(t testing.TB, s *store, tools deploy.Tools, health ...time.Duration) (*deploy.Runner, string) {
	t.Helper()
	data := t.TempDir()
	cfg := deploy.Config{
		Jobs: sqlite.NewJobStore(s.db), States: sqlite.NewStateStore(s.db), Secrets: s.svc.Secrets,
		Platforms: s.svc.Platforms, Credentials: s.svc.Credentials, Tools: tools, DataDir: data,
		Logger: testLogger(t), SSHTimeout: 20 * time.Second, HealthTimeout: 5 * time.Second,
	}
	if len(health) > 0 {
		cfg.HealthTimeout = health[0]
	}
	r, err := deploy.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, data
}

// waitState polls the job until cond holds or a deadline passes.
func waitState(t *testing.T, r *deploy.Runner, ctx context.Context, id int64, timeout time.Duration, cond func(*myt.Job) bool) *myt.Job {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j, err := r.FindJobByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			log, _, _ := r.JobLog(ctx, id, 0)
			var b strings.Builder
			for _, c := range log {
				b.WriteString(c.Text)
			}
			t.Fatalf("job %d is %s after %s\n%s", id, j.State, timeout, b.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func fullLog(t *testing.T, r *deploy.Runner, ctx context.Context, id int64) string {
	t.Helper()
	var b strings.Builder
	var after int64
	for {
		chunks, _, err := r.JobLog(ctx, id, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunks) == 0 {
			return b.String()
		}
		for _, c := range chunks {
			b.WriteString(c.Text)
			after = c.Seq
		}
	}
}

// TestCloudDeployPlansThenWaits deploys aws and openstack designs with
// fake credentials: init takes the providers from a local mirror, a real
// plan runs through MyT's state backend, and the job stops in
// awaiting-approval with the plan's summary. A cancel then leaves nothing:
// no state, no lock, no job directory, the platform as it was.
func TestCloudDeployPlansThenWaits(t *testing.T) {
	e := testenv.Require(t)
	tofu := e.Tofu(t)
	mirror := testenv.ProviderMirror(t, "aws", "openstack")
	cases := []struct {
		provider, design, secret string
		cred                     func(s *store) error
		add                      int
		host, data               string
	}{
		{
			provider: myt.ProviderAWS, secret: fakeAWSSecret, add: 18, host: "aws_instance.this", data: "aws_ebs_volume.data",
			design: `apiVersion: myt/v1
kind: Platform
metadata: {name: cloudy}
spec:
  target: {provider: aws, credentials: my-aws, region: eu-west-1, image: ami-0123456789abcdef0, adminCIDRs: ["203.0.113.7/32", "2001:db8:7::/48"]}
  database: {kind: timescaledb}
`,
			cred: func(s *store) error {
				return s.svc.Credentials.CreateCredential(s.ctx, &myt.Credential{Name: "my-aws", Kind: "aws", Public: map[string]string{"access_key_id": fakeAWSKey}},
					myt.Secret{"secret_access_key": fakeAWSSecret})
			},
		},
		{
			provider: myt.ProviderOpenStack, secret: fakeOSPass, add: 10, host: "openstack_compute_instance_v2.this", data: "openstack_blockstorage_volume_v3.data",
			design: `apiVersion: myt/v1
kind: Platform
metadata: {name: stacky}
spec:
  target: {provider: openstack, credentials: my-os, region: RegionOne, externalNetwork: ext-net, network: 6f1c2a9e-3b4d-4c5e-8f70-1a2b3c4d5e6f, adminCIDRs: ["198.51.100.0/24"]}
  database: {kind: mysql}
  broker: {amqp: false}
`,
			cred: func(s *store) error {
				return s.svc.Credentials.CreateCredential(s.ctx, &myt.Credential{Name: "my-os", Kind: "openstack", Public: map[string]string{
					"auth_url": "http://127.0.0.1:1/v3", "username": "myt-test", "project_name": "myt-test"}},
					myt.Secret{"password": fakeOSPass})
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.provider, func(t *testing.T) {
			s := newStoreWith(t, tc.design, tc.cred)
			r, data := newRunner(t, s, deploy.Tools{Tofu: tofu, TofuCLIConfig: mirror, InfraOverrides: offlineProviders})
			ctx := s.ctx
			j, err := r.StartJob(ctx, s.platform.ID, myt.JobRequest{Kind: myt.JobDeploy})
			if err != nil {
				t.Fatal(err)
			}
			j = waitState(t, r, ctx, j.ID, 8*time.Minute, func(j *myt.Job) bool { return !j.Active() || j.State == myt.JobAwaitingApproval })
			log := fullLog(t, r, ctx, j.ID)
			if j.State != myt.JobAwaitingApproval {
				t.Fatalf("job %s (%s), want awaiting-approval\n%s", j.State, j.Error, log)
			}
			p := j.Plan
			if p == nil || p.Add < tc.add || p.Change != 0 || p.Destroy != 0 || p.DestroysData || p.ReplacesHost {
				t.Fatalf("plan %+v, want %d+ to add and nothing else\n%s", p, tc.add, log)
			}
			var isHost, isData bool
			for _, c := range p.Changes {
				isHost = isHost || c.Address == tc.host && c.Host && c.Action == "create"
				isData = isData || c.Address == tc.data && c.Data && c.Action == "create"
			}
			if !isHost || !isData {
				t.Errorf("plan changes do not mark %s as the host and %s as the data volume: %+v", tc.host, tc.data, p.Changes)
			}
			for _, st := range []string{"init", "plan"} {
				if s := j.Step(st); s == nil || s.State != myt.StepSucceeded {
					t.Errorf("step %s: %+v", st, s)
				}
			}
			if strings.Contains(log, tc.secret) {
				t.Errorf("the job log shows the credential's secret")
			}
			if _, err := r.ApproveJob(ctx, j.ID+1000, ""); myt.ErrorCode(err) != myt.ENOTFOUND {
				t.Errorf("approve an unknown job: %v", err)
			}

			j, err = r.CancelJob(ctx, j.ID)
			if err != nil {
				t.Fatal(err)
			}
			if j.State != myt.JobCancelled {
				t.Errorf("after cancel: %s", j.State)
			}
			pl, err := s.svc.Platforms.FindPlatformByID(ctx, s.platform.ID)
			if err != nil {
				t.Fatal(err)
			}
			if pl.Status != myt.StatusDesigned {
				t.Errorf("platform %s after a cancelled plan, want designed", pl.Status)
			}
			states := sqlite.NewStateStore(s.db)
			if st, err := states.Get(ctx, s.platform.ID); err != nil || st != nil {
				t.Errorf("state after a cancelled plan: %v %s", err, st)
			}
			if info, err := states.Locked(ctx, s.platform.ID); err != nil || info != "" {
				t.Errorf("lock after a cancelled plan: %v %s", err, info)
			}
			if ents, _ := os.ReadDir(filepath.Join(data, "jobs")); len(ents) != 0 {
				t.Errorf("job directories left: %v", ents)
			}
		})
	}
}

// fixedSeed is a render.SecretSource giving a known SSH key seed, so the
// test knows the key a cloud bundle authorizes.
type fixedSeed struct{ seed string }

func (f fixedSeed) Secret(_ context.Context, name string) (string, error) {
	if name == render.SecretSSHKeySeed {
		return f.seed, nil
	}
	return "x" + name + "-0123456789abcdef", nil
}

// TestCloudApplyOutputsInventory runs an aws deploy past the plan with a
// recorded OpenTofu (testdata/fake-tofu replays what `tofu -json` prints):
// apply progress is counted from its messages, the outputs become
// infra/outputs.json, the bundle's real inventory resolves the host, user
// and data device from them (an ansible-playbook stand-in runs
// ansible-inventory), the server certificate is re-issued for the public
// address, and the job connects over real SSH to that address (an SSH test
// host holding the bundle's key) and records its host key. No platform is
// installed there, so the health step fails, saying why.
func TestCloudApplyOutputsInventory(t *testing.T) {
	e := testenv.Require(t)
	h := e.SSHHost(t)
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	s := awsStore(t)
	// The key the bundle authorizes on the machine comes from this seed.
	const seed = "recorded-cloud-seed-6a1e0c"
	if err := s.svc.Secrets.Put(s.ctx, s.platform.ID, render.SecretSSHKeySeed, []byte(seed)); err != nil {
		t.Fatal(err)
	}
	b, err := render.Render(context.Background(), s.platform.Design, render.Options{Secrets: fixedSeed{seed}})
	if err != nil {
		t.Fatal(err)
	}
	pub := b.File("ssh/id_ed25519.pub")
	auth := filepath.Join(filepath.Dir(h.KeyFile), "authorized_keys")
	f, err := os.OpenFile(auth, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(pub.Data); err != nil {
		t.Fatal(err)
	}
	f.Close()

	inventory := filepath.Join(t.TempDir(), "inventory.json")
	r, _ := newRunner(t, s, deploy.Tools{
		Tofu: filepath.Join(testdata, "fake-tofu"), Ansible: filepath.Join(testdata, "fake-ansible-playbook"),
		Env: map[string]string{"MYT_FAKE_ADDRESS": h.Addr, "MYT_FAKE_INVENTORY": inventory},
	})
	ctx := s.ctx
	j, err := r.StartJob(ctx, s.platform.ID, myt.JobRequest{Kind: myt.JobDeploy, AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	j = waitState(t, r, ctx, j.ID, 5*time.Minute, func(j *myt.Job) bool { return !j.Active() })
	log := fullLog(t, r, ctx, j.ID)
	if j.State != myt.JobFailed || !strings.Contains(j.Error, "not healthy") || !strings.Contains(j.Error, "/srv/myt/platform") {
		t.Fatalf("job %s: %q, want failed at health naming the missing services\n%s", j.State, j.Error, log)
	}
	want := map[string][2]string{
		"plan":     {myt.StepSucceeded, "16 to add, 0 to change, 0 to destroy"},
		"approval": {myt.StepSucceeded, "approved ahead (--yes)"},
		"apply":    {myt.StepSucceeded, "16/16 resources"},
		"outputs":  {myt.StepSucceeded, h.Addr},
		"connect":  {myt.StepSucceeded, "connected to " + h.Addr + ":22"},
		"ansible":  {myt.StepSucceeded, ""},
		"health":   {myt.StepFailed, ""},
	}
	for name, w := range want {
		st := j.Step(name)
		if st == nil || st.State != w[0] || w[1] != "" && st.Detail != w[1] {
			t.Errorf("step %s: %+v, want %s %q", name, st, w[0], w[1])
		}
	}
	// A task that took more than a second says so, and is named among
	// the slowest.
	if !regexp.MustCompile(`(?m)^  ok: cloudy \(1\.[5-9]s\)$`).MatchString(log) || !regexp.MustCompile(`slowest tasks: base : Install base packages 1\.[5-9]s`).MatchString(log) {
		t.Errorf("the log does not say how long the slow task took:\n%s", log)
	}
	// The real inventory, resolved from the outputs the job wrote.
	raw, err := os.ReadFile(inventory)
	if err != nil {
		t.Fatalf("the inventory was not resolved: %v\n%s", err, log)
	}
	// "cloudy | SUCCESS => {..."msg": "HOST,USER,DEVICE"}"
	_, js, ok := strings.Cut(string(raw), "=> ")
	var res struct{ Msg string }
	if !ok || json.Unmarshal([]byte(js), &res) != nil {
		t.Fatalf("inventory: %s", raw)
	}
	if want := h.Addr + ",root,/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"; res.Msg != want {
		t.Errorf("the inventory resolves to %q, want %q", res.Msg, want)
	}
	// The certificate devices see names the public address.
	certPEM, err := s.svc.Secrets.Get(ctx, s.platform.ID, "tls/server.crt")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname(h.Addr); err != nil {
		t.Errorf("server certificate: %v", err)
	}
	// The connect step installed the platform's monitor key on the
	// machine (in the file the test host's sshd reads) and recorded
	// where the monitor logs in.
	if b, err := os.ReadFile(auth); err != nil || !strings.Contains(string(b), `command="df -P /srv/myt/data" ssh-ed25519 `) ||
		!strings.HasSuffix(string(b), fmt.Sprintf(" myt-monitor:platform-%d\n", s.platform.ID)) {
		t.Errorf("authorized_keys after connect (%v):\n%s", err, b)
	}
	if login, err := s.svc.Secrets.Get(ctx, s.platform.ID, "ssh/monitor_login"); err != nil || string(login) != fmt.Sprintf(`{"user":"root","host":%q,"port":22}`, h.Addr) {
		t.Errorf("monitor login %s, %v", login, err)
	}
	if kh, err := s.svc.Secrets.Get(ctx, s.platform.ID, "ssh/known_hosts"); err != nil || !strings.Contains(string(kh), h.Addr) {
		t.Errorf("known host not recorded: %v %q", err, kh)
	}
	if strings.Contains(log, fakeAWSSecret) || strings.Contains(log, seed) {
		t.Error("the log shows a secret")
	}
}

// TestCancelKillsTheToolsGroup cancels a job while its tool runs: the
// tool and the child it started are gone when CancelJob returns.
func TestCancelKillsTheToolsGroup(t *testing.T) {
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	s := awsStore(t)
	r, _ := newRunner(t, s, deploy.Tools{Tofu: filepath.Join(testdata, "hanging-tofu"), Ansible: filepath.Join(testdata, "fake-ansible-playbook")})
	j, err := r.StartJob(s.ctx, s.platform.ID, myt.JobRequest{Kind: myt.JobDeploy})
	if err != nil {
		t.Fatal(err)
	}
	running := func() string {
		out, _ := exec.Command("pgrep", "-af", "sleep 314[12]").Output()
		return strings.TrimSpace(string(out))
	}
	waitState(t, r, s.ctx, j.ID, time.Minute, func(j *myt.Job) bool {
		st := j.Step("init")
		return st != nil && st.State == myt.StepRunning && strings.Count(running(), "\n") == 1
	})
	j, err = r.CancelJob(s.ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != myt.JobCancelled {
		t.Errorf("job %s after cancel", j.State)
	}
	if left := running(); left != "" {
		t.Errorf("the tool's processes outlived the cancel:\n%s", left)
	}
}

// awsStore is a store whose platform "cloudy" is an aws design with a
// saved (fake) credential.
func awsStore(t testing.TB) *store {
	t.Helper()
	return newStoreWith(t, `apiVersion: myt/v1
kind: Platform
metadata: {name: cloudy}
spec:
  target: {provider: aws, credentials: my-aws, region: eu-west-1, image: ami-0123456789abcdef0, adminCIDRs: ["203.0.113.7/32"]}
  database: {kind: timescaledb}
`, func(s *store) error {
		return s.svc.Credentials.CreateCredential(s.ctx, &myt.Credential{Name: "my-aws", Kind: "aws", Public: map[string]string{"access_key_id": fakeAWSKey}},
			myt.Secret{"secret_access_key": fakeAWSSecret})
	})
}

// TestCloudDestroyKeepsOrDeletesData runs aws destroy jobs against a
// stand-in OpenTofu that keeps a state and, like the real one, refuses to
// plan the destruction of a volume guarded by prevent_destroy. A destroy
// that keeps the data forgets the volume and applies a plan made with the
// guard on (so it could not have deleted the volume); one that deletes the
// data plans and applies the volume's deletion.
func TestCloudDestroyKeepsOrDeletesData(t *testing.T) {
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"aws_ebs_volume.data", "aws_instance.this", "aws_subnet.this", "aws_volume_attachment.data", "aws_vpc.this"}
	for _, deleteData := range []bool{false, true} {
		t.Run(map[bool]string{false: "keep", true: "delete"}[deleteData], func(t *testing.T) {
			s := awsStore(t)
			if err := sqlite.NewJobStore(s.db).SetPlatformDeployment(s.ctx, s.platform.ID, myt.PlatformDeployment{Status: myt.StatusRunning}); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			state, calls := filepath.Join(dir, "state"), filepath.Join(dir, "calls")
			if err := os.WriteFile(state, []byte(strings.Join(all, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			r, _ := newRunner(t, s, deploy.Tools{
				Tofu: filepath.Join(testdata, "stateful-tofu"),
				Env:  map[string]string{"MYT_FAKE_STATE": state, "MYT_FAKE_CALLS": calls},
			})
			req := myt.JobRequest{Kind: myt.JobDestroy, AutoApprove: true}
			if deleteData {
				req.DeleteData, req.Confirm = true, "cloudy"
			}
			j, err := r.StartJob(s.ctx, s.platform.ID, req)
			if err != nil {
				t.Fatal(err)
			}
			j = waitState(t, r, s.ctx, j.ID, 2*time.Minute, func(j *myt.Job) bool { return !j.Active() })
			log := fullLog(t, r, s.ctx, j.ID)
			if j.State != myt.JobSucceeded {
				t.Fatalf("destroy %s: %s\n%s", j.State, j.Error, log)
			}
			if left, _ := os.ReadFile(state); len(strings.TrimSpace(string(left))) != 0 {
				t.Errorf("state after the destroy: %q, want empty", left)
			}
			b, err := os.ReadFile(calls)
			if err != nil {
				t.Fatal(err)
			}
			plans := strings.Split(strings.TrimSpace(string(b)), "\n")
			applied := plans[len(plans)-1]
			if deleteData {
				if len(plans) != 1 || !strings.HasPrefix(applied, "plan unguarded: ") || !strings.Contains(applied, "aws_ebs_volume.data") {
					t.Errorf("plans %q, want one without the guard that deletes the volume", plans)
				}
				if !strings.Contains(j.Summary, "data volume included") {
					t.Errorf("summary %q", j.Summary)
				}
				return
			}
			if !strings.HasPrefix(applied, "plan guarded: ") || strings.Contains(applied, "aws_ebs_volume.data") {
				t.Errorf("the applied plan was %q, want one made with the guard on and the volume out of the state", applied)
			}
			if !strings.Contains(log, "Removed aws_ebs_volume.data") || !strings.Contains(j.Summary, "is kept") {
				t.Errorf("summary %q; the volume left the state? log:\n%s", j.Summary, log)
			}
		})
	}
}
