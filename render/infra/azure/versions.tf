terraform {
  required_version = ">= 1.6"
  required_providers {
    # 4.1 is the first release that accepts ed25519 keys in admin_ssh_key.
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.1, < 5.0"
    }
  }
}

# Credentials come from the environment (ARM_CLIENT_ID, ARM_CLIENT_SECRET,
# ARM_TENANT_ID, ARM_SUBSCRIPTION_ID), never from files in this directory.
provider "azurerm" {
  features {}
}
