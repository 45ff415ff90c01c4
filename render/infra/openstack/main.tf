locals {
  flavors = {
    small  = "m1.small"
    medium = "m1.medium"
    large  = "m1.large"
  }
  flavor = var.instance_type != "" ? var.instance_type : local.flavors[var.size]
  image  = var.image != "" ? var.image : "Ubuntu 24.04"

  # A network given by id needs no lookup (and no API call at plan time).
  network_is_id = can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.network))

  admin_rules = {
    for pair in setproduct(var.admin_cidrs, concat([22], var.admin_ports)) :
    "admin-${pair[1]}-${pair[0]}" => { cidr = pair[0], port = pair[1] }
  }
  device_rules = {
    for pair in setproduct(var.device_cidrs, var.device_ports) :
    "device-${pair[1]}-${pair[0]}" => { cidr = pair[0], port = pair[1] }
  }
  ingress = merge(local.admin_rules, local.device_rules)
}

resource "openstack_networking_secgroup_v2" "this" {
  name        = "${var.name}-platform"
  description = "MyT platform ${var.name}: SSH and admin ports from admin networks, broker ports from device networks"
}

resource "openstack_networking_secgroup_rule_v2" "ingress" {
  for_each          = local.ingress
  security_group_id = openstack_networking_secgroup_v2.this.id
  description       = each.key
  direction         = "ingress"
  ethertype         = strcontains(each.value.cidr, ":") ? "IPv6" : "IPv4"
  protocol          = "tcp"
  port_range_min    = each.value.port
  port_range_max    = each.value.port
  remote_ip_prefix  = each.value.cidr
}

resource "openstack_compute_keypair_v2" "this" {
  name       = "${var.name}-myt"
  public_key = var.ssh_public_key
}

# The platform's network: the design names it by name or id; without one,
# the project's only non-external network.
data "openstack_networking_network_v2" "this" {
  count    = local.network_is_id ? 0 : 1
  name     = var.network != "" ? var.network : null
  external = false
}

# The instance's port is made here, not by Nova: the floating IP needs a
# port id, and the provider leaves network[0].port empty for ports it did
# not create. Being its own resource, the port (and the floating IP on it)
# also outlives a replaced instance. Security groups go on the port: Nova
# does not apply an instance's groups to a port it was given.
resource "openstack_networking_port_v2" "this" {
  name               = var.name
  network_id         = local.network_is_id ? var.network : data.openstack_networking_network_v2.this[0].id
  admin_state_up     = true
  security_group_ids = [openstack_networking_secgroup_v2.this.id]
  description        = "MyT platform ${var.name}"
}

resource "openstack_compute_instance_v2" "this" {
  name              = var.name
  image_name        = local.image
  flavor_name       = local.flavor
  key_pair          = openstack_compute_keypair_v2.this.name
  availability_zone = var.zone != "" ? var.zone : null

  network {
    port = openstack_networking_port_v2.this.id
  }

  metadata = {
    "myt:platform" = var.name
  }

  lifecycle {
    ignore_changes = [image_name]
  }
}

# The data lives on its own volume so that losing the VM loses no data.
resource "openstack_blockstorage_volume_v3" "data" {
  name              = "${var.name}-data"
  size              = var.data_volume_gb
  availability_zone = var.zone != "" ? var.zone : null
  metadata = {
    "myt:platform" = var.name
  }

  lifecycle {
    # MyT renders false only for a destroy that deletes the data.
    prevent_destroy = true
  }
}

resource "openstack_compute_volume_attach_v2" "data" {
  instance_id = openstack_compute_instance_v2.this.id
  volume_id   = openstack_blockstorage_volume_v3.data.id
}

resource "openstack_networking_floatingip_v2" "this" {
  pool        = var.external_network
  description = "MyT platform ${var.name}"
}

resource "openstack_networking_floatingip_associate_v2" "this" {
  floating_ip = openstack_networking_floatingip_v2.this.address
  port_id     = openstack_networking_port_v2.this.id
}
