locals {
  sizes = {
    small  = "e2-small"
    medium = "e2-standard-2"
    large  = "e2-standard-4"
  }
  machine_type = var.instance_type != "" ? var.instance_type : local.sizes[var.size]
  image        = var.image != "" ? var.image : "ubuntu-os-cloud/ubuntu-2404-lts-amd64"
  labels       = { "myt-platform" = var.name }
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
  name          = "${var.name}-admin"
  network       = google_compute_network.this.name
  direction     = "INGRESS"
  source_ranges = var.admin_cidrs
  target_tags   = ["myt-${var.name}"]
  allow {
    protocol = "tcp"
    ports    = [for p in concat([22], var.admin_ports) : tostring(p)]
  }
}

resource "google_compute_firewall" "devices" {
  count         = length(var.device_ports) > 0 ? 1 : 0
  name          = "${var.name}-devices"
  network       = google_compute_network.this.name
  direction     = "INGRESS"
  source_ranges = var.device_cidrs
  target_tags   = ["myt-${var.name}"]
  allow {
    protocol = "tcp"
    ports    = [for p in var.device_ports : tostring(p)]
  }
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
}

resource "google_compute_instance" "this" {
  name         = var.name
  zone         = var.zone
  machine_type = local.machine_type
  tags         = ["myt-${var.name}"]
  labels       = local.labels

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

  metadata = {
    ssh-keys               = "myt:${var.ssh_public_key}"
    block-project-ssh-keys = "true"
  }

  lifecycle {
    ignore_changes = [boot_disk[0].initialize_params[0].image]
  }
}
