// Package deploy runs deploy, update and destroy jobs: it renders a
// platform's bundle into a private job directory, drives the tools
// (OpenTofu or Terraform, ansible-playbook, Docker Compose) in their own
// process groups, turns their machine-readable output into steps and
// progress, keeps the log, and records the outcome on the platform.
//
// The Runner implements myt.JobService. One job runs per platform at a
// time (the store enforces it); a job on a cloud stops after its plan and
// waits for approval. Secrets reach the tools only through the
// environment or 0600 files in the job directory, which is removed when
// the job ends, and every secret value is masked in the log.
//
// OpenTofu state never touches the disk: the Runner serves it, sealed in
// the store, through an http backend on a loopback listener of its own,
// with locking and a credential per job.
package deploy
