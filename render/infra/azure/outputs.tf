output "public_address" {
  description = "Static public IP address of the platform."
  value       = azurerm_public_ip.this.ip_address
}

output "ssh_user" {
  description = "User Ansible logs in as."
  value       = azurerm_linux_virtual_machine.this.admin_username
}

output "data_volume_device" {
  description = "Stable path of the data disk (LUN 0)."
  value       = "/dev/disk/azure/scsi1/lun0"
}
