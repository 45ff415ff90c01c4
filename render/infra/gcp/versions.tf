terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 7.0"
    }
  }
}

# Credentials come from the environment (GOOGLE_CREDENTIALS or
# GOOGLE_APPLICATION_CREDENTIALS, and GOOGLE_PROJECT), never from files in
# this directory.
provider "google" {
  region = var.region
  zone   = var.zone
}
