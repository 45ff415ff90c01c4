variable "name" {
  description = "Platform name; prefixes every resource."
  type        = string
}

variable "region" {
  description = "AWS region, for example eu-west-1."
  type        = string
}

variable "zone" {
  description = "Availability zone for the subnet; empty lets AWS choose."
  type        = string
  default     = ""
}

variable "size" {
  description = "small, medium or large; mapped to an instance type below."
  type        = string
  default     = "small"
  validation {
    condition     = contains(["small", "medium", "large"], var.size)
    error_message = "size must be small, medium or large."
  }
}

variable "instance_type" {
  description = "Explicit instance type; overrides size."
  type        = string
  default     = ""
}

variable "image" {
  description = "AMI id; empty means the latest Ubuntu 24.04 LTS from Canonical."
  type        = string
  default     = ""
}

variable "data_volume_gb" {
  description = "Size of the separate EBS data volume mounted at /srv/myt/data."
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
  description = "Address range of the platform's VPC."
  type        = string
  default     = "10.42.0.0/16"
}
