variable "name" {
  description = "Platform name; prefixes every resource."
  type        = string
}

variable "region" {
  description = "OpenStack region, for example RegionOne."
  type        = string
}

variable "zone" {
  description = "Availability zone for the instance and volume; empty lets OpenStack choose."
  type        = string
  default     = ""
}

variable "size" {
  description = "small, medium or large; mapped to a flavor below."
  type        = string
  default     = "small"
  validation {
    condition     = contains(["small", "medium", "large"], var.size)
    error_message = "size must be small, medium or large."
  }
}

variable "instance_type" {
  description = "Explicit flavor name; overrides size."
  type        = string
  default     = ""
}

variable "image" {
  description = "Image name; empty means \"Ubuntu 24.04\"."
  type        = string
  default     = ""
}

variable "network" {
  description = "Network (name or id) the instance's port is on; empty means the project's only non-external network."
  type        = string
  default     = ""
}

variable "external_network" {
  description = "External network (pool) floating IPs come from."
  type        = string
  default     = "public"
}

variable "data_volume_gb" {
  description = "Size of the separate block-storage data volume mounted at /srv/myt/data."
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

variable "ssh_user" {
  description = "Default user of the image."
  type        = string
  default     = "ubuntu"
}
