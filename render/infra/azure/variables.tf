variable "name" {
  description = "Platform name; prefixes every resource."
  type        = string
}

variable "region" {
  description = "Azure location, for example westeurope."
  type        = string
}

variable "zone" {
  description = "Availability zone (1, 2 or 3) of the VM, its data disk and public IP; empty means no zone."
  type        = string
  default     = ""
  validation {
    condition     = contains(["", "1", "2", "3"], var.zone)
    error_message = "zone must be 1, 2 or 3, or empty."
  }
}

variable "size" {
  description = "small, medium or large; mapped to a VM size below."
  type        = string
  default     = "small"
  validation {
    condition     = contains(["small", "medium", "large"], var.size)
    error_message = "size must be small, medium or large."
  }
}

variable "instance_type" {
  description = "Explicit VM size (for example Standard_B2s); overrides size."
  type        = string
  default     = ""
}

variable "image" {
  description = "Image as publisher:offer:sku:version; empty means Ubuntu 24.04 LTS."
  type        = string
  default     = ""
}

variable "data_volume_gb" {
  description = "Size of the separate managed data disk mounted at /srv/myt/data."
  type        = number
  default     = 20
}

variable "admin_cidrs" {
  description = "Networks allowed to reach SSH and the admin ports."
  type        = list(string)
  validation {
    condition     = length(var.admin_cidrs) > 0 && !contains(var.admin_cidrs, "0.0.0.0/0") && !contains(var.admin_cidrs, "::/0")
    error_message = "admin_cidrs must list your own networks, not the whole Internet."
  }
}

variable "admin_ports" {
  description = "TCP ports open to admin_cidrs besides SSH (Grafana HTTPS)."
  type        = list(number)
  default     = [3000]
}

variable "device_cidrs" {
  description = "Networks devices connect from."
  type        = list(string)
}

variable "device_ports" {
  description = "Broker ports open to device_cidrs (8883 MQTTS, 5671 AMQPS; 1883/5672 only when plaintext is enabled)."
  type        = list(number)
}

variable "ssh_public_key" {
  description = "OpenSSH public key authorized for the ssh_user."
  type        = string
}

variable "vpc_cidr" {
  description = "Address range of the platform's virtual network."
  type        = string
  default     = "10.42.0.0/16"
}
