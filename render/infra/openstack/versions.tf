terraform {
  required_version = ">= 1.6"
  required_providers {
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = ">= 3.4, < 4.0"
    }
  }
}

# Credentials come from the environment (OS_AUTH_URL, OS_USERNAME,
# OS_PASSWORD or application credentials, OS_PROJECT_NAME, ...), never from
# files in this directory.
provider "openstack" {
  region = var.region
}
