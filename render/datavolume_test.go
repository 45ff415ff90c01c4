package render_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDataVolumeRoleNeverReformats runs the real data_volume role with
// ansible-playbook against this machine (connection local) on a loop
// device: the first run makes a filesystem and mounts it; a second run
// changes nothing; after a file is written, unmounted and the role run
// again, the file is still there (the disk was mounted, not reformatted).
// It records the mount in its own fstab file, never /etc/fstab.
func TestDataVolumeRoleNeverReformats(t *testing.T) {
	playbook := needTool(t, "the data_volume role runs under the real Ansible", "ansible-playbook")
	need(t, "root", os.Geteuid() == 0, "losetup and mount need root")
	needTool(t, "the role makes ext4 filesystems", "mkfs.ext4")
	losetup := needTool(t, "the test attaches a loop device", "losetup")

	root := t.TempDir()
	img := filepath.Join(root, "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(losetup, "--find", "--show", img).CombinedOutput()
	need(t, "a loop device", err == nil, strings.TrimSpace(string(out)))
	dev := strings.TrimSpace(string(out))
	mnt := filepath.Join(root, "data")
	t.Cleanup(func() {
		_ = exec.Command("umount", mnt).Run()
		_ = exec.Command(losetup, "-d", dev).Run()
	})
	// A stable-looking path to the device, as clouds give.
	link := filepath.Join(root, "by-id-data")
	if err := os.Symlink(dev, link); err != nil {
		t.Fatal(err)
	}

	bundle := writeBundle(t, mustRender(t, designNamed(t, "aws-timescaledb")))
	play := filepath.Join(root, "play.yml")
	if err := os.WriteFile(play, []byte("---\n- name: Data volume\n  hosts: localhost\n  connection: local\n  gather_facts: false\n  roles:\n    - role: data_volume\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fstab := filepath.Join(root, "fstab")
	dropin := filepath.Join(root, "docker.service.d", "myt-data.conf")
	env := []string{
		"ANSIBLE_ROLES_PATH=" + filepath.Join(bundle, "ansible", "roles"),
		"ANSIBLE_LOCAL_TEMP=" + t.TempDir(), "ANSIBLE_HOME=" + t.TempDir(), "ANSIBLE_NOCOLOR=1",
	}
	recap := regexp.MustCompile(`localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0`)
	run := func() (changed string) {
		t.Helper()
		out, err := runTool(t, root, env, playbook, "-i", "localhost,", play,
			"-e", "myt_data_device="+link, "-e", "myt_data_dir="+mnt, "-e", "data_volume_fstab="+fstab, "-e", "data_volume_docker_dropin="+dropin)
		if err != nil {
			t.Fatalf("ansible-playbook: %v\n%s", err, out)
		}
		m := recap.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no recap in:\n%s", out)
		}
		return m[2]
	}
	mounted := func() bool {
		return exec.Command("findmnt", "--mountpoint", mnt).Run() == nil
	}

	if c := run(); c == "0" {
		t.Fatal("first run changed nothing")
	}
	if !mounted() {
		t.Fatal("data volume not mounted after the first run")
	}
	if c := run(); c != "0" {
		t.Fatalf("second run changed %s tasks; want 0 (idempotent)", c)
	}
	// Docker starts only once the data volume is mounted (fstab's nofail
	// alone would let containers start on the empty mount point).
	if b, err := os.ReadFile(dropin); err != nil || !strings.Contains(string(b), "[Unit]\nRequiresMountsFor="+mnt+"\n") {
		t.Errorf("docker drop-in: %v\n%s", err, b)
	}
	if err := os.WriteFile(filepath.Join(mnt, "keep.txt"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	if c := run(); c != "1" {
		t.Fatalf("run after unmount changed %s tasks; want 1 (mount only)", c)
	}
	b, err := os.ReadFile(filepath.Join(mnt, "keep.txt"))
	if err != nil || string(b) != "precious" {
		t.Fatalf("data lost after re-running the role: %q %v", b, err)
	}
	tab, _ := os.ReadFile(fstab)
	if strings.Count(string(tab), mnt) != 1 || !strings.HasPrefix(string(tab), "UUID=") {
		t.Errorf("fstab:\n%s", tab)
	}

	// A disk with a partition table but no filesystem on the whole device
	// is refused and left untouched.
	pimg := filepath.Join(root, "parted.img")
	mbr := make([]byte, 512)
	copy(mbr[446:], []byte{0, 0, 0, 0, 0x83, 0, 0, 0, 0x00, 0x08, 0, 0, 0xa0, 0x86, 0x01, 0}) // Linux partition at LBA 2048
	mbr[510], mbr[511] = 0x55, 0xaa
	if err := os.WriteFile(pimg, mbr, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(pimg, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(losetup, "--find", "--show", pimg).CombinedOutput()
	need(t, "a second loop device", err == nil, strings.TrimSpace(string(out)))
	pdev := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command(losetup, "-d", pdev).Run() })
	pmnt := filepath.Join(root, "pdata")
	res, err := runTool(t, root, env, playbook, "-i", "localhost,", play,
		"-e", "myt_data_device="+pdev, "-e", "myt_data_dir="+pmnt, "-e", "data_volume_fstab="+fstab, "-e", "data_volume_docker_dropin="+dropin)
	if err == nil || !strings.Contains(res, "partition table") {
		t.Fatalf("partitioned disk: err %v\n%s", err, res)
	}
	after, err := os.ReadFile(pimg)
	if err != nil || !bytes.Equal(after[:512], mbr) || bytes.Count(after[512:1<<20], []byte{0}) != (1<<20)-512 {
		t.Fatal("the partitioned disk was written to")
	}
}
