package web_test

import (
	"testing"

	"github.com/myt-iot/myt/web"
)

// Design errors land on the input, and the step, a person can fix them in.
func TestWizardInput(t *testing.T) {
	for _, c := range []struct {
		path, name, label string
		step              int
	}{
		{"metadata.name", "name", "Name", web.StepTarget},
		{"spec.target.adminCIDRs[0]", "admin_cidrs", "Admin networks", web.StepTarget},
		{"spec.target.dataVolumeGB", "data_volume_gb", "Data volume", web.StepTarget},
		{"spec.target.somethingNew", "", "", web.StepTarget},
		{"spec.database.kind", "db_kind", "Database", web.StepData},
		{"spec.database.fields.temperature", "field_name", "Fields", web.StepData},
		{"spec.database.retentionDays", "retention_days", "Retention", web.StepData},
		{"spec.broker.ports[1]", "broker", "Broker", web.StepBroker},
		{"spec.broker", "broker", "Broker", web.StepBroker},
		{"spec.processing.handler", "handler", "Handler", web.StepProcessing},
		{"spec.processing.workers", "workers", "Workers", web.StepProcessing},
		{"apiVersion", "", "", web.StepReview},
		{"spec.monitoring", "", "", web.StepReview},
	} {
		name, label, step := web.WizardInput(c.path)
		if name != c.name || label != c.label || step != c.step {
			t.Errorf("wizardInput(%q) = %q, %q, %d; want %q, %q, %d", c.path, name, label, step, c.name, c.label, c.step)
		}
	}
}
