output "public_address" {
  description = "Static external IP address of the platform."
  value       = google_compute_address.this.address
}

output "ssh_user" {
  description = "User Ansible logs in as."
  value       = "myt"
}

output "data_volume_device" {
  description = "Stable path of the data disk (device_name data)."
  value       = "/dev/disk/by-id/google-data"
}
