// Package release holds the tests of MyT's release artifacts, built by
// scripts/release: the binaries of every target, the archives and their
// worker binaries, the SBOMs and checksums, the .deb (installed, upgraded
// and purged on a systemd test host) and the container image (run on the
// test environment's engine). It has no code of its own: packaging/
// holds the package definition and images/myt the image's.
package release
