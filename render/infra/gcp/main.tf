locals {
  sizes = {
    small  = "e2-small"
    medium = "e2-standard-2"
    large  = "e2-standard-4"
  }
  machine_type = var.instance_type != "" ? var.instance_type : local.sizes[var.size]
  # Arm machine series (Tau T2A, Axion C4A) boot only arm64 images.
  arm64  = can(regex("^(t2a|c4a)-", local.machine_type))
  image  = var.image != "" ? var.image : "ubuntu-os-cloud/ubuntu-2404-lts-${local.arm64 ? "arm64" : "amd64"}"
  labels = { "myt-platform" = var.name }

  # GCP refuses a firewall rule whose source ranges mix IPv4 and IPv6,
  # so each list is split by family into one rule per family present.
  admin_ranges = {
    for family, cidrs in {
      ipv4 = [for c in var.admin_cidrs : c if !strcontains(c, ":")]
      ipv6 = [for c in var.admin_cidrs : c if strcontains(c, ":")]
    } : family => cidrs if length(cidrs) > 0
  }
  device_ranges = {
    for family, cidrs in {
      ipv4 = [for c in var.device_cidrs : c if !strcontains(c, ":")]
      ipv6 = [for c in var.device_cidrs : c if strcontains(c, ":")]
    } : family => cidrs if length(cidrs) > 0 && length(var.device_ports) > 0
  }
}

resource "google_compute_network" "this" {
  name                    = var.name
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "this" {
  name          = var.name
  network       = google_compute_network.this.id
  region        = var.region
  ip_cidr_range = var.subnet_cidr
}

resource "google_compute_firewall" "admin" {
  for_each      = local.admin_ranges
  name          = each.key == "ipv4" ? "${var.name}-admin" : "${var.name}-admin-${each.key}"
  network       = google_compute_network.this.name
  direction     = "INGRESS"
  source_ranges = each.value
  target_tags   = ["myt-${var.name}"]
  allow {
    protocol = "tcp"
    ports    = [for p in concat([22], var.admin_ports) : tostring(p)]
  }
}

resource "google_compute_firewall" "devices" {
  for_each      = local.device_ranges
  name          = each.key == "ipv4" ? "${var.name}-devices" : "${var.name}-devices-${each.key}"
  network       = google_compute_network.this.name
  direction     = "INGRESS"
  source_ranges = each.value
  target_tags   = ["myt-${var.name}"]
  allow {
    protocol = "tcp"
    ports    = [for p in var.device_ports : tostring(p)]
  }
}

# The IPv4 rules keep the names and state of the single rules they were.
moved {
  from = google_compute_firewall.admin
  to   = google_compute_firewall.admin["ipv4"]
}

moved {
  from = google_compute_firewall.devices[0]
  to   = google_compute_firewall.devices["ipv4"]
}

resource "google_compute_address" "this" {
  name   = var.name
  region = var.region
}

# The data lives on its own disk so that losing the VM loses no data.
resource "google_compute_disk" "data" {
  name   = "${var.name}-data"
  zone   = var.zone
  size   = var.data_volume_gb
  type   = "pd-balanced"
  labels = local.labels

  lifecycle {
    # MyT renders false only for a destroy that deletes the data.
    prevent_destroy = true
  }
}

resource "google_compute_instance" "this" {
  name         = var.name
  zone         = var.zone
  machine_type = local.machine_type
  tags         = ["myt-${var.name}"]
  labels       = local.labels

  # A new machine_type needs the instance stopped; without this the
  # provider refuses the change instead of stopping and starting it.
  allow_stopping_for_update = true

  boot_disk {
    initialize_params {
      image = local.image
      size  = 20
    }
  }

  attached_disk {
    source      = google_compute_disk.data.id
    device_name = "data"
  }

  network_interface {
    subnetwork = google_compute_subnetwork.this.id
    access_config {
      nat_ip = google_compute_address.this.address
    }
  }

  # OS Login, when a project or organization turns it on, ignores
  # ssh-keys metadata: the instance turns it off so the key below works.
  metadata = {
    enable-oslogin         = "FALSE"
    ssh-keys               = "myt:${var.ssh_public_key}"
    block-project-ssh-keys = "true"
  }

  lifecycle {
    ignore_changes = [boot_disk[0].initialize_params[0].image]
  }
}
