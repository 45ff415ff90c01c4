// Package worker is the platform's data path: it consumes the durable
// RabbitMQ queue myt.ingest, runs the user's Python handler on each message,
// writes the results to the chosen database in batches, and acknowledges
// messages only after the database committed them. Bad input is
// dead-lettered to myt.dead with the reason in a header.
//
// Subpackages: record (the record model and timestamp rules), source (AMQP),
// handler (the Python runner), sink and sink/<kind> (database writers).
// The worker never imports the control plane (web UI, vault, deployer,
// control-plane store).
package worker
