package web

// WizardInput exposes wizardInput to the tests.
var WizardInput = wizardInput

// The wizard's steps, for the tests.
const (
	StepTarget     = stepTarget
	StepData       = stepData
	StepBroker     = stepBroker
	StepProcessing = stepProcessing
	StepReview     = stepReview
)
