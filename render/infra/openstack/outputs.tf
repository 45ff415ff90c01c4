output "public_address" {
  description = "Floating IP address of the platform."
  value       = openstack_networking_floatingip_v2.this.address
}

output "ssh_user" {
  description = "User Ansible logs in as."
  value       = var.ssh_user
}

output "data_volume_device" {
  description = "Stable path of the data volume (virtio serial is the volume id, cut to 20 characters)."
  value       = "/dev/disk/by-id/virtio-${substr(openstack_blockstorage_volume_v3.data.id, 0, 20)}"
}
