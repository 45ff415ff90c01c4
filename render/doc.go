// Package render turns a platform design into a deployable bundle: every
// file a deployment uses, written so that a person can read it, keep it in
// git and apply it without MyT ("eject").
//
// A bundle has up to five parts:
//
//	infra/     OpenTofu/Terraform module for the design's cloud provider
//	           (static .tf files embedded in this package) and a generated
//	           terraform.tfvars.json; absent for the ssh and local targets
//	ansible/   inventory, ansible.cfg, site.yml and the roles base,
//	           data_volume, docker and platform; absent for local
//	platform/  compose.yaml and everything the services read: RabbitMQ
//	           config and definitions, worker.yaml and handler.py, Grafana
//	           provisioning, TLS certificates, and secrets/ (0600 files)
//	pki/       the platform's CA certificate and key (the key stays with the
//	           control plane; it is never copied to the host)
//	ssh/       an SSH key pair, when the caller did not supply a public key
//
// Render is pure: secrets come from an injected SecretSource and time from
// an injected clock, so the same inputs give the same bundle (apart from
// key material, which comes from crypto/rand). Check runs the real tools
// (tofu or terraform, ansible-playbook, ansible-lint, docker compose) on a
// written bundle.
package render
