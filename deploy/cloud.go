package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
)

// Cloud pipelines: OpenTofu (or Terraform) makes the machine, then the
// host pipeline installs the platform on it.

// tofu returns the tool, set up in the bundle's infra/ directory with
// state in MyT (the http backend), the provider's credentials in its
// environment, and the plugin cache in the data dir. revoke ends the
// state credential.
func (w *work) tofu() (*tofu, func(), error) {
	path, err := lookPath(w.r.cfg.Tools.Tofu, "tofu", "terraform")
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(w.bundleDir, "infra")
	if err := os.WriteFile(filepath.Join(dir, "myt_backend_override.tf"), []byte(backendOverride), 0o644); err != nil {
		return nil, nil, err
	}
	if o := w.r.cfg.Tools.InfraOverrides[w.d.Spec.Target.Provider]; o != "" {
		if err := os.WriteFile(filepath.Join(dir, "myt_provider_override.tf"), []byte(o), 0o600); err != nil {
			return nil, nil, err
		}
	}
	access, revoke := w.r.state.Grant(w.p.ID)
	w.log.mask(access.Password)
	env := access.env()
	for k, v := range cloudEnv(w.d, w.cred, w.secret) {
		env[k] = v
	}
	cache := filepath.Join(w.r.cfg.DataDir, "plugin-cache")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		revoke()
		return nil, nil, err
	}
	env["TF_PLUGIN_CACHE_DIR"] = cache
	env["TF_DATA_DIR"] = filepath.Join(w.dir, "tfdata")
	if c := w.r.cfg.Tools.TofuCLIConfig; c != "" {
		env["TF_CLI_CONFIG_FILE"] = c
	}
	return &tofu{path: path, dir: dir, env: w.environ(env), log: w.log}, revoke, nil
}

// cloudEnv is how each provider takes its credentials: environment
// variables only.
func cloudEnv(d *myt.Design, c *myt.Credential, s myt.Secret) map[string]string {
	if c == nil {
		return nil
	}
	p := c.Public
	switch d.Spec.Target.Provider {
	case myt.ProviderAWS:
		return map[string]string{"AWS_ACCESS_KEY_ID": p["access_key_id"], "AWS_SECRET_ACCESS_KEY": s["secret_access_key"]}
	case myt.ProviderOpenStack:
		env := map[string]string{
			"OS_AUTH_URL": p["auth_url"], "OS_USERNAME": p["username"], "OS_PASSWORD": s["password"],
			"OS_PROJECT_NAME": p["project_name"], "OS_USER_DOMAIN_NAME": p["domain_name"], "OS_PROJECT_DOMAIN_NAME": p["domain_name"],
		}
		if r := p["region"]; r != "" {
			env["OS_REGION_NAME"] = r
		}
		return env
	case myt.ProviderAzure:
		return map[string]string{"ARM_SUBSCRIPTION_ID": p["subscription_id"], "ARM_TENANT_ID": p["tenant_id"], "ARM_CLIENT_ID": p["client_id"], "ARM_CLIENT_SECRET": s["client_secret"]}
	case myt.ProviderGCP:
		return map[string]string{"GOOGLE_CREDENTIALS": s["service_account_json"], "GOOGLE_PROJECT": p["project_id"]}
	}
	return nil
}

// planAndApprove runs init and plan, then waits for approval unless the
// request approved ahead and the plan destroys no data, or the plan is
// empty. It returns the plan file and the plan.
func (w *work) planAndApprove(t *tofu, destroy bool) (string, *myt.Plan, error) {
	if err := w.step(stepInit, func() (string, error) { return "", t.Init(w.ctx) }); err != nil {
		return "", nil, err
	}
	file := filepath.Join(w.dir, "tfplan")
	var plan *myt.Plan
	err := w.step(stepPlan, func() (string, error) {
		var err error
		if plan, err = t.Plan(w.ctx, file, destroy); err != nil {
			return "", err
		}
		if destroy && !w.job.DeleteData {
			// The data volume leaves the state before the apply (below)
			// and stays in the account.
			for i, c := range plan.Changes {
				if c.Data {
					plan.Changes[i].Action = "keep"
					plan.Destroy--
				}
			}
			plan.DestroysData = false
		}
		w.mu.Lock()
		w.job.Plan = plan
		w.mu.Unlock()
		return planSummary(plan), nil
	})
	if err != nil {
		return "", nil, err
	}
	for _, c := range plan.Changes {
		w.log.Printf("  %-8s %s", c.Action, c.Address)
	}
	err = w.step(stepApproval, func() (string, error) {
		switch {
		case plan.Empty():
			return "nothing to change", errSkipped
		case w.req.AutoApprove && (!plan.DestroysData || w.req.Confirm == w.p.Name):
			return "approved ahead (--yes)", nil
		}
		w.setState(myt.JobAwaitingApproval)
		w.log.Line("Waiting for approval: approve the plan above to apply it, or cancel the job.")
		select {
		case <-w.approved:
		case <-w.ctx.Done():
			return "", w.ctx.Err()
		}
		w.log.Printf("Plan approved.")
		return "approved", nil
	})
	if err != nil {
		return "", nil, err
	}
	w.setState(myt.JobRunning)
	return file, plan, nil
}

func planSummary(p *myt.Plan) string {
	s := fmt.Sprintf("%d to add, %d to change, %d to destroy", p.Add, p.Change, p.Destroy)
	if p.ReplacesHost {
		s += "; REPLACES the machine"
	}
	if p.DestroysData {
		s += "; DESTROYS the data volume"
	}
	return s
}

// applyPlan applies the plan with progress "k/N resources".
func (w *work) applyPlan(t *tofu, file string, plan *myt.Plan) error {
	return w.step(stepApply, func() (string, error) {
		if plan.Empty() {
			return "nothing to change", errSkipped
		}
		total := plan.Add + plan.Change + plan.Destroy
		done := 0
		w.changed = true
		w.progress(stepApply, 0, total, fmt.Sprintf("0/%d resources", total))
		err := t.Apply(w.ctx, file, func(addr, action string) {
			done++
			w.progress(stepApply, done, max(done, total), fmt.Sprintf("%d/%d resources", done, max(done, total)))
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d/%d resources", done, max(done, total)), nil
	})
}

func (w *work) deployCloud() error {
	if err := w.step(stepRender, func() (string, error) {
		addr, err := w.secretValue(secretAddress)
		if err != nil {
			return "", err
		}
		if len(addr) > 0 {
			return "", w.render(string(addr))
		}
		return "", w.render()
	}); err != nil {
		return err
	}
	t, revoke, err := w.tofu()
	if err != nil {
		return err
	}
	defer revoke()
	file, plan, err := w.planAndApprove(t, false)
	if err != nil {
		return err
	}
	if err := w.applyPlan(t, file, plan); err != nil {
		return err
	}
	if plan.ReplacesHost || slices.ContainsFunc(plan.Changes, func(c myt.PlanChange) bool { return c.Host && c.Action == "create" }) {
		// A new machine has new host keys.
		if err := w.putSecret(secretKnownHosts, nil); err != nil {
			return err
		}
	}
	err = w.step(stepOutputs, func() (string, error) {
		outs, raw, err := t.Output(w.ctx)
		if err != nil {
			return "", err
		}
		if w.address, err = outputString(outs, "public_address"); err != nil {
			return "", err
		}
		if w.sshUser, err = outputString(outs, "ssh_user"); err != nil {
			return "", err
		}
		if err := w.putSecret(secretSSHUser, []byte(w.sshUser)); err != nil {
			return "", err
		}
		// The certificate must name the address devices use.
		if err := w.render(w.address); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(w.bundleDir, "infra", "outputs.json"), raw, 0o600); err != nil {
			return "", err
		}
		return w.address, nil
	})
	if err != nil {
		return err
	}
	key := w.bundle.File("ssh/id_ed25519")
	if key == nil {
		return fmt.Errorf("the bundle has no SSH key for the machine")
	}
	w.sshKey = key.Data
	return w.install(22)
}

func (w *work) destroyCloud() error {
	if err := w.backupHook(); err != nil {
		return err
	}
	if err := w.step(stepRender, func() (string, error) { return "", w.render() }); err != nil {
		return err
	}
	t, revoke, err := w.tofu()
	if err != nil {
		return err
	}
	defer revoke()
	file, plan, err := w.planAndApprove(t, true)
	if err != nil {
		return err
	}
	var kept []string
	if !w.job.DeleteData {
		for _, c := range plan.Changes {
			if c.Data {
				kept = append(kept, c.Address)
			}
		}
	}
	if len(kept) > 0 {
		// Forget the data volume, then plan again without it: the volume
		// stays in the account, detached, for a later deploy or restore.
		w.changed = true
		w.log.Printf("Keeping the data volume: %s leaves MyT's state and stays in your account.", strings.Join(kept, ", "))
		if err := t.StateRm(w.ctx, kept...); err != nil {
			return fmt.Errorf("keep the data volume: %w", err)
		}
		// The plan that is applied is made with the data volume guarded
		// (prevent_destroy): had it not left the state, this plan fails
		// rather than delete it.
		if err := w.guardData(); err != nil {
			return err
		}
		if plan, err = t.Plan(w.ctx, file, true); err != nil {
			return err
		}
		if plan.DestroysData {
			return fmt.Errorf("keep the data volume: the plan still destroys it")
		}
	}
	if err := w.applyPlan(t, file, plan); err != nil {
		return err
	}
	if err := w.putSecret(secretAddress, nil); err != nil {
		return err
	}
	if len(kept) > 0 {
		w.job.Summary = "Destroyed. The data volume (" + strings.Join(kept, ", ") + ") is kept in your cloud account."
	} else {
		w.job.Summary = "Destroyed, data volume included."
	}
	return nil
}

// guardData rewrites the bundle's infrastructure module with the data
// volume's prevent_destroy on.
func (w *work) guardData() error {
	mod, err := render.InfraModule(w.d.Spec.Target.Provider, false)
	if err != nil {
		return err
	}
	for name, b := range mod {
		if err := os.WriteFile(filepath.Join(w.bundleDir, "infra", name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
