output "public_address" {
  description = "Public IPv4 address of the platform."
  value       = aws_eip.this.public_ip
}

output "ssh_user" {
  description = "User Ansible logs in as."
  value       = "ubuntu"
}

output "data_volume_device" {
  description = "Stable path of the data volume on the instance (Nitro NVMe serial)."
  value       = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${replace(aws_ebs_volume.data.id, "-", "")}"
}
