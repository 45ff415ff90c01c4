terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 6.0"
    }
  }
}

# Credentials come from the environment (AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY), never from files in this directory.
provider "aws" {
  region = var.region
  default_tags {
    tags = {
      "myt:platform" = var.name
    }
  }
}
