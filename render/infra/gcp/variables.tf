variable "name" {
  description = "Platform name; prefixes every resource."
  type        = string
}

variable "region" {
  description = "GCP region, for example europe-west1."
  type        = string
}

variable "zone" {
  description = "Zone of the instance and disk, for example europe-west1-b."
  type        = string
}

variable "size" {
  description = "small, medium or large; mapped to a machine type below."
  type        = string
  default     = "small"
  validation {
    condition     = contains(["small", "medium", "large"], var.size)
    error_message = "size must be small, medium or large."
  }
}

variable "instance_type" {
  description = "Explicit machine type (for example e2-standard-2); overrides size."
  type        = string
  default     = ""
}

variable "image" {
  description = "Boot image; empty means ubuntu-os-cloud/ubuntu-2404-lts-amd64 (-arm64 on Arm machine types)."
  type        = string
  default     = ""
}

variable "data_volume_gb" {
  description = "Size of the separate persistent data disk mounted at /srv/myt/data."
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

variable "subnet_cidr" {
  description = "Address range of the platform's subnet."
  type        = string
  default     = "10.42.1.0/24"
}
