locals {
  sizes = {
    small  = "t3.small"
    medium = "t3.large"
    large  = "m6i.xlarge"
  }
  instance_type = var.instance_type != "" ? var.instance_type : local.sizes[var.size]
  image         = var.image != "" ? var.image : data.aws_ami.ubuntu[0].id
  # Graviton types (t4g, m7g, c8g, ...) boot only arm64 images: the
  # default image follows the instance type's architecture.
  arm64 = contains(flatten(data.aws_ec2_instance_type.this[*].supported_architectures), "arm64")

  # One rule per (network, port): SSH and admin ports for admins, broker
  # ports for devices. Keys are stable so a change touches only its rule.
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

data "aws_ec2_instance_type" "this" {
  count         = var.image == "" ? 1 : 0
  instance_type = local.instance_type
}

data "aws_ami" "ubuntu" {
  count       = var.image == "" ? 1 : 0
  most_recent = true
  owners      = ["099720109477"] # Canonical
  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${local.arm64 ? "arm64" : "amd64"}-server-*"]
  }
  filter {
    name   = "architecture"
    values = [local.arm64 ? "arm64" : "x86_64"]
  }
  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

resource "aws_subnet" "this" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, 1)
  availability_zone = var.zone != "" ? var.zone : null
  tags              = { Name = var.name }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = var.name }
}

resource "aws_route_table" "this" {
  vpc_id = aws_vpc.this.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }
  tags = { Name = var.name }
}

resource "aws_route_table_association" "this" {
  subnet_id      = aws_subnet.this.id
  route_table_id = aws_route_table.this.id
}

resource "aws_security_group" "this" {
  name        = "${var.name}-platform"
  description = "MyT platform ${var.name}: SSH and admin ports from admin networks, broker ports from device networks"
  vpc_id      = aws_vpc.this.id
  tags        = { Name = var.name }
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each          = local.ingress
  security_group_id = aws_security_group.this.id
  description       = each.key
  cidr_ipv4         = strcontains(each.value.cidr, ":") ? null : each.value.cidr
  cidr_ipv6         = strcontains(each.value.cidr, ":") ? each.value.cidr : null
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.this.id
  description       = "all outbound (packages, images)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_key_pair" "this" {
  key_name   = "${var.name}-myt"
  public_key = var.ssh_public_key
}

resource "aws_instance" "this" {
  ami                         = local.image
  instance_type               = local.instance_type
  subnet_id                   = aws_subnet.this.id
  vpc_security_group_ids      = [aws_security_group.this.id]
  key_name                    = aws_key_pair.this.key_name
  associate_public_ip_address = false

  root_block_device {
    volume_size = 20
    volume_type = "gp3"
    encrypted   = true
  }

  metadata_options {
    http_tokens = "required"
  }

  tags = { Name = var.name }

  lifecycle {
    ignore_changes = [ami]
  }
}

# The data lives on its own volume so that losing the VM loses no data.
# Its zone is the subnet's, not the instance's: a replaced instance (new
# AMI or size, taint, -replace) must not take the volume with it.
resource "aws_ebs_volume" "data" {
  availability_zone = aws_subnet.this.availability_zone
  size              = var.data_volume_gb
  type              = "gp3"
  encrypted         = true
  tags              = { Name = "${var.name}-data" }

  lifecycle {
    # MyT renders false only for a destroy that deletes the data.
    prevent_destroy = true
  }
}

resource "aws_volume_attachment" "data" {
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data.id
  instance_id = aws_instance.this.id
}

resource "aws_eip" "this" {
  domain   = "vpc"
  instance = aws_instance.this.id
  tags     = { Name = var.name }

  depends_on = [aws_internet_gateway.this]
}
