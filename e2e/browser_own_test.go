package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/httpapi"
)

// browserOwnData is owning the data in headless Chromium, on the running
// platform of the local lifecycle: a device added (its password shown
// once, its quickstart with its own user), the data page and an export
// downloaded through MyT, a backup taken and listed good, and a restore
// confirmed by typing the platform's name. Every page is screenshotted
// and checked with axe-core.
func browserOwnData(t *testing.T, c *httpapi.Client, p *myt.Platform) {
	t.Helper()
	chromiumPath(t)
	b := newBrowser(t, c.BaseURL)
	b.signIn("ada", "correct horse battery")
	b.waitPath("/")
	page := fmt.Sprintf("/platforms/%d", p.ID)

	b.open(page + "/devices")
	b.waitFor("the devices page", `document.querySelector('#devices') !== null`)
	b.fill("#f-name", "sensor-b1")
	b.fill("#f-description", "greenhouse, north wall")
	// The answer to the add is the device's page, with its password once.
	b.submit(`form[action$="/devices"] button[type=submit]`)
	b.waitFor("the device added", `document.querySelector('[data-testid=device-added]') !== null`)
	pw := b.text("#device-password")
	if len(pw) < 20 {
		t.Errorf("the new device's password, shown once: %q", pw)
	}
	if qs := b.text("main"); !strings.Contains(qs, "mosquitto_pub") || !strings.Contains(qs, "-u sensor-b1") && !strings.Contains(qs, "sensor-b1") {
		t.Errorf("the device's quickstart: %.800s", qs)
	}
	b.screenshot("57-own-device-added")
	b.open(page + "/devices/sensor-b1")
	if strings.Contains(b.html(), pw) {
		t.Error("the device's password is shown again")
	}
	b.open(page + "/devices")
	b.see("sensor-b1")
	b.screenshot("58-own-devices")

	b.open(page + "/data")
	b.waitFor("the download form", `document.querySelector('form[action$="/data/export"]') !== null`)
	b.screenshot("59-own-data")
	// The download as the browser gets it, streamed through MyT.
	n := b.await(fmt.Sprintf(`fetch(%q).then(r => r.ok ? r.text() : Promise.reject(r.status)).then(t => t.trim().split("\n").length)`, page+"/data/export?format=ndjson&device=dev-1"))
	if n != 1000 {
		t.Errorf("the NDJSON download of dev-1 has %v lines, want 1000", n)
	}

	waitJobPage := func(what string) {
		t.Helper()
		b.waitPath("/jobs/")
		deadline := time.Now().Add(5 * time.Minute)
		for {
			st := eval[string](b, `document.querySelector('#job').dataset.jobState`)
			if st == "succeeded" {
				return
			}
			if st == "failed" || st == "cancelled" || time.Now().After(deadline) {
				t.Fatalf("the %s job page shows %s:\n%s", what, st, b.text("#job-log"))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	b.open(page + "/backups")
	b.waitFor("the backups page", `document.querySelector('#backups') !== null`)
	b.submit(`form[action$="/backups"] button[type=submit]`)
	waitJobPage("backup")
	b.open(page + "/backups")
	b.waitFor("a good backup", `document.querySelector('tr[data-testid=backup][data-state=ok]') !== null`)
	b.screenshot("60-own-backups")

	b.fill("#f-confirm", p.Name)
	b.submit(`form[action$="/restore"] button[type=submit]`)
	waitJobPage("restore")
	b.see("SUCCEEDED")
	b.screenshot("61-own-restore-succeeded")
	// The backup was just taken: the restore brings back what was there.
	if n := b.await(fmt.Sprintf(`fetch(%q).then(r => r.text()).then(t => t.trim().split("\n").length)`, page+"/data/export?format=ndjson&device=dev-1")); n != 1000 {
		t.Errorf("after the restore dev-1 has %v records, want 1000", n)
	}
}
