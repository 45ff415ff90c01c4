locals {
  sizes = {
    small  = "Standard_B2s"
    medium = "Standard_B2ms"
    large  = "Standard_D4s_v5"
  }
  vm_size = var.instance_type != "" ? var.instance_type : local.sizes[var.size]
  # Arm (Ampere) sizes carry a "p" among their feature letters
  # (Standard_D2ps_v5, Standard_B2pts_v2) and boot only arm64 images.
  arm64 = can(regex("^Standard_[A-Z]+[0-9]+[a-z]*p[a-z]*_v[0-9]+$", local.vm_size))
  image = split(":", var.image != "" ? var.image : "Canonical:ubuntu-24_04-lts:${local.arm64 ? "server-arm64" : "server"}:latest")

  # Each admin or device rule gets its own priority; admin rules first.
  admin_ports  = concat([22], var.admin_ports)
  admin_rules  = { for i, port in local.admin_ports : "admin-${port}" => { port = port, cidrs = var.admin_cidrs, priority = 100 + i } }
  device_rules = { for i, port in var.device_ports : "device-${port}" => { port = port, cidrs = var.device_cidrs, priority = 200 + i } }
  rules        = merge(local.admin_rules, local.device_rules)
  tags         = { "myt-platform" = var.name }

  # The design's zone for the VM, its data disk and its public IP; empty
  # leaves them regional (no zone).
  zone  = var.zone != "" ? var.zone : null
  zones = var.zone != "" ? [var.zone] : null
}

resource "azurerm_resource_group" "this" {
  name     = "${var.name}-myt"
  location = var.region
  tags     = local.tags
}

resource "azurerm_virtual_network" "this" {
  name                = var.name
  address_space       = [var.vpc_cidr]
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_subnet" "this" {
  name                 = "platform"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [cidrsubnet(var.vpc_cidr, 8, 1)]
}

resource "azurerm_network_security_group" "this" {
  name                = "${var.name}-platform"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_network_security_rule" "ingress" {
  for_each                    = local.rules
  name                        = each.key
  priority                    = each.value.priority
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = tostring(each.value.port)
  source_address_prefixes     = each.value.cidrs
  destination_address_prefix  = "*"
  resource_group_name         = azurerm_resource_group.this.name
  network_security_group_name = azurerm_network_security_group.this.name
}

resource "azurerm_public_ip" "this" {
  name                = var.name
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  allocation_method   = "Static"
  sku                 = "Standard"
  zones               = local.zones
  tags                = local.tags
}

resource "azurerm_network_interface" "this" {
  name                = var.name
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags

  ip_configuration {
    name                          = "primary"
    subnet_id                     = azurerm_subnet.this.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.this.id
  }
}

resource "azurerm_network_interface_security_group_association" "this" {
  network_interface_id      = azurerm_network_interface.this.id
  network_security_group_id = azurerm_network_security_group.this.id
}

resource "azurerm_linux_virtual_machine" "this" {
  name                            = var.name
  location                        = azurerm_resource_group.this.location
  resource_group_name             = azurerm_resource_group.this.name
  size                            = local.vm_size
  admin_username                  = "myt"
  disable_password_authentication = true
  network_interface_ids           = [azurerm_network_interface.this.id]
  zone                            = local.zone
  tags                            = local.tags

  admin_ssh_key {
    username   = "myt"
    public_key = var.ssh_public_key
  }

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "StandardSSD_LRS"
    disk_size_gb         = 30
  }

  source_image_reference {
    publisher = local.image[0]
    offer     = local.image[1]
    sku       = local.image[2]
    version   = local.image[3]
  }
}

# The data lives on its own disk so that losing the VM loses no data. It
# is in the VM's zone: a zonal VM attaches only disks of its zone.
resource "azurerm_managed_disk" "data" {
  name                 = "${var.name}-data"
  location             = azurerm_resource_group.this.location
  resource_group_name  = azurerm_resource_group.this.name
  storage_account_type = "StandardSSD_LRS"
  create_option        = "Empty"
  disk_size_gb         = var.data_volume_gb
  zone                 = local.zone
  tags                 = local.tags

  lifecycle {
    # MyT renders false only for a destroy that deletes the data.
    prevent_destroy = true
  }
}

resource "azurerm_virtual_machine_data_disk_attachment" "data" {
  managed_disk_id    = azurerm_managed_disk.data.id
  virtual_machine_id = azurerm_linux_virtual_machine.this.id
  lun                = 0
  caching            = "ReadWrite"
}
