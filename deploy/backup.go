package deploy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/vault"
)

// Backups and restores: a native dump runs inside the platform's
// database container (docker exec on the MyT server for local platforms,
// over the job's SSH session for ssh and cloud ones) and its stdout
// streams into DATA/backups/<platform id>/; a restore streams a stored
// dump into the container's own client. See docs/backup.md.

// BackupStore keeps the record of backups (sqlite.BackupStore).
type BackupStore interface {
	CreateBackup(ctx context.Context, b *myt.Backup, file string) error
	// FinishBackup ends a running backup; ECONFLICT when it is not
	// running any more.
	FinishBackup(ctx context.Context, b *myt.Backup) error
	Backup(ctx context.Context, id int64) (*myt.Backup, string, error)
	Backups(ctx context.Context, platformID int64) ([]*myt.Backup, error)
	DeleteBackup(ctx context.Context, id int64) (string, error)
	// FailRunning marks running backups failed and returns their files.
	FailRunning(ctx context.Context) ([]string, error)
	Schedule(ctx context.Context, platformID int64) (*myt.BackupSchedule, error)
	SetSchedule(ctx context.Context, s *myt.BackupSchedule) error
}

const (
	stepRestore = "restore"
	// secretBackupKey is the platform secret holding an encrypted
	// backup's own key: backup/<id>.
	secretBackupKey = "backup/"
)

// dbTool is how one database kind is dumped and restored, as shell
// scripts run by sh inside its container. Passwords are read there from
// the container's secrets, never put on a command line outside it.
type dbTool struct {
	format, ext    string
	dump, restore  string
	dumpTool, tool string
}

var dbTools = map[string]dbTool{
	myt.DatabaseMySQL: {
		format: "mysqldump SQL", ext: "sql", dumpTool: "mysqldump", tool: "mysql",
		dump:    `MYSQL_PWD="$(cat /run/secrets/db_root_password)" exec mysqldump -uroot --single-transaction --quick --routines --triggers --no-tablespaces myt`,
		restore: `MYSQL_PWD="$(cat /run/secrets/db_root_password)" exec mysql -uroot myt`,
	},
	myt.DatabaseTimescaleDB: {
		format: "pg_dump custom", ext: "pgdump", dumpTool: "pg_dump", tool: "pg_restore",
		dump: `PGPASSWORD="$(cat /run/secrets/db_password)" exec pg_dump -h 127.0.0.1 -U myt -d myt --format=custom`,
		// TimescaleDB's documented restore: timescaledb_pre_restore()
		// before, timescaledb_post_restore() after, when the extension
		// is there.
		restore: `set -e
export PGPASSWORD="$(cat /run/secrets/db_password)"
ts=$(psql -h 127.0.0.1 -U myt -d myt -tAc "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
if [ "$ts" = 1 ]; then psql -q -h 127.0.0.1 -U myt -d myt -c 'SELECT timescaledb_pre_restore()' >/dev/null; fi
pg_restore -h 127.0.0.1 -U myt -d myt --clean --if-exists --no-owner --exit-on-error
if [ "$ts" = 1 ]; then psql -q -h 127.0.0.1 -U myt -d myt -c 'SELECT timescaledb_post_restore()' >/dev/null; fi`,
	},
	myt.DatabaseMongoDB: {
		format: "mongodump archive", ext: "archive", dumpTool: "mongodump", tool: "mongorestore",
		// The password goes in a config file only the container sees.
		dump: `set -e; umask 077; c=$(mktemp); trap 'rm -f "$c"' EXIT
printf 'password: "%s"\n' "$(cat /run/secrets/db_password)" > "$c"
mongodump --quiet --config "$c" --username myt --authenticationDatabase admin --db myt --archive`,
		restore: `set -e; umask 077; c=$(mktemp); trap 'rm -f "$c"' EXIT
printf 'password: "%s"\n' "$(cat /run/secrets/db_password)" > "$c"
mongorestore --quiet --config "$c" --username myt --authenticationDatabase admin --nsInclude 'myt.*' --drop --archive`,
	},
	myt.DatabaseInfluxDB: {
		// influx backup writes a directory: tarred to stdout.
		format: "influx backup (tar)", ext: "tar", dumpTool: "influx", tool: "influx",
		dump: `set -e; d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
INFLUX_TOKEN="$(cat /run/secrets/influxdb_token)" influx backup --org myt --bucket myt "$d" >&2
tar -C "$d" -cf - .`,
		restore: `set -e; d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
tar -C "$d" -xf -
export INFLUX_TOKEN="$(cat /run/secrets/influxdb_token)"
influx bucket delete --org myt --name myt >&2 || true
influx restore --org myt --bucket myt "$d" >&2`,
	},
}

// container is the platform's database container (compose project
// myt-<name>).
func container(d *myt.Design) string {
	return "myt-" + d.Metadata.Name + "-" + d.Spec.Database.Kind + "-1"
}

// dbExec runs script with sh inside the database container, stdin from
// in (none when nil) and stdout to out; stderr goes to the job log.
type dbExec func(ctx context.Context, script string, in io.Reader, out io.Writer) error

// localExec is dbExec on MyT's own Docker engine.
func (w *work) localExec() (dbExec, error) {
	path, err := lookPath(w.r.cfg.Tools.Docker, "docker")
	if err != nil {
		return nil, err
	}
	name := container(w.d)
	return func(ctx context.Context, script string, in io.Reader, out io.Writer) error {
		args := []string{"exec"}
		if in != nil {
			args = append(args, "-i")
		}
		cmd := exec.Command(path, append(args, name, "sh", "-c", script)...)
		cmd.Env = w.environ(nil)
		cmd.Stdin, cmd.Stdout = in, out
		cmd.SysProcAttr = groupAttr()
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		pgid := cmd.Process.Pid
		stop := context.AfterFunc(ctx, func() { signalGroup(pgid, 9) })
		defer stop()
		last := w.logLines(stderr)
		err = cmd.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("%w: %s", err, last())
		}
		return nil
	}, nil
}

// sshExec is dbExec on the platform's host, over c.
func (w *work) sshExec(c *ssh.Client, h sshHost) dbExec {
	name := container(w.d)
	return func(ctx context.Context, script string, in io.Reader, out io.Writer) error {
		s, err := c.NewSession()
		if err != nil {
			return err
		}
		defer s.Close()
		flag := ""
		if in != nil {
			flag = "-i "
			s.Stdin = in
		}
		s.Stdout = out
		pr, pw := io.Pipe()
		s.Stderr = pw
		last := w.logLines(pr)
		done := make(chan error, 1)
		go func() { done <- s.Run(h.sudo("docker exec " + flag + name + " sh -c " + shellQuote(script))) }()
		select {
		case err = <-done:
		case <-ctx.Done():
			_ = s.Signal(ssh.SIGKILL)
			s.Close()
			err = ctx.Err()
		}
		pw.Close()
		msg := last()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return nil
	}
}

// logLines logs r's lines as they come; the function it returns waits
// for r's end and returns its last line.
func (w *work) logLines(r io.Reader) func() string {
	done := make(chan string, 1)
	go func() {
		var last string
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				w.log.Line(l)
				last = l
			}
		}
		_, _ = io.Copy(io.Discard, r)
		done <- last
	}()
	return func() string { return <-done }
}

// dbHost opens the way into the database container: the local engine, or
// the host over SSH (connecting as the job's connect step, which the
// caller's steps must list for ssh and cloud). close ends it.
func (w *work) dbHost(asStep bool) (exec dbExec, closeFn func(), err error) {
	if w.d.Spec.Target.Provider == myt.ProviderLocal {
		e, err := w.localExec()
		return e, func() {}, err
	}
	c, h, err := w.reconnect(asStep)
	if err != nil {
		return nil, nil, err
	}
	return w.sshExec(c, h), func() { c.Close() }, nil
}

// backupJob is the backup job's pipeline.
func (w *work) backupJob() error {
	if w.r.cfg.Backups == nil {
		return myt.Errorf(myt.EINVALID, "This MyT server keeps no backups.")
	}
	run, closeFn, err := w.dbHost(true)
	if err != nil {
		return err
	}
	defer closeFn()
	return w.step(stepBackup, func() (string, error) {
		b, err := w.takeBackup(run, w.req.Reason, w.req.Encrypt)
		if err != nil {
			return "", err
		}
		w.job.Summary = fmt.Sprintf("Backup %d stored: %s, %s, SHA-256 %s.", b.ID, byteSize(b.Size), b.Duration.Round(100*time.Millisecond), b.SHA256[:12])
		w.retain()
		return fmt.Sprintf("backup %d, %s", b.ID, byteSize(b.Size)), nil
	})
}

// backupFile is a backup's file relative to the data directory.
func backupFile(platformID, jobID int64, ext string) string {
	return filepath.Join("backups", strconv.FormatInt(platformID, 10), fmt.Sprintf("job-%d.%s", jobID, ext))
}

// takeBackup dumps the database into a new backup, recorded running
// until it is stored and verified.
func (w *work) takeBackup(run dbExec, reason string, encrypt bool) (*myt.Backup, error) {
	kind := w.d.Spec.Database.Kind
	t, ok := dbTools[kind]
	if !ok {
		return nil, myt.Errorf(myt.EINVALID, "MyT cannot back up a %s database.", kind)
	}
	if reason == "" {
		reason = "manual"
	}
	b := &myt.Backup{PlatformID: w.p.ID, Platform: w.p.Name, JobID: w.job.ID, Kind: kind, Format: t.format, Encrypted: encrypt, Reason: reason}
	rel := backupFile(w.p.ID, w.job.ID, t.ext)
	ctx := context.WithoutCancel(w.ctx)
	if err := w.r.cfg.Backups.CreateBackup(ctx, b, rel); err != nil {
		return nil, err
	}
	start := time.Now()
	size, sum, err := w.dumpInto(run, b, t, filepath.Join(w.r.cfg.DataDir, rel))
	b.Duration, b.Size, b.SHA256 = time.Since(start), size, sum
	b.State = myt.BackupOK
	if err == nil && size == 0 {
		err = fmt.Errorf("%s wrote nothing", t.dumpTool)
	}
	if err != nil {
		b.State, b.Error = myt.BackupFailed, userMessage(err)
		os.Remove(filepath.Join(w.r.cfg.DataDir, rel))
		os.Remove(filepath.Join(w.r.cfg.DataDir, rel) + partSuffix)
	}
	if ferr := w.r.cfg.Backups.FinishBackup(ctx, b); ferr != nil && err == nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	w.log.Printf("backup %d: %s (%s), %s in %s, SHA-256 %s, verified", b.ID, rel, t.format, byteSize(size), b.Duration.Round(100*time.Millisecond), sum)
	return b, nil
}

func (w *work) dumpInto(run dbExec, b *myt.Backup, t dbTool, path string) (int64, string, error) {
	var key []byte
	if b.Encrypted {
		key = vault.NewKey()
		if err := w.putSecret(secretBackupKey+strconv.FormatInt(b.ID, 10), key); err != nil {
			return 0, "", err
		}
	}
	w.log.Printf("dumping the %s database (%s) in %s", b.Kind, t.dumpTool, container(w.d))
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := run(w.ctx, t.dump, nil, pw)
		pw.CloseWithError(err)
		errc <- err
	}()
	size, sum, err := storeBackup(path, pr, key, backupIdent(b))
	pr.CloseWithError(errors.New("the backup was not stored"))
	if rerr := <-errc; rerr != nil {
		return 0, "", fmt.Errorf("%s: %w", t.dumpTool, rerr)
	}
	return size, sum, err
}

// backupIdent binds an encrypted backup's frames to it.
func backupIdent(b *myt.Backup) string {
	return fmt.Sprintf("%d/%d", b.PlatformID, b.ID)
}

// retain deletes the oldest good backups of the platform beyond its
// schedule's retention count (scheduled backups only).
func (w *work) retain() {
	if w.req.Reason != "schedule" {
		return
	}
	ctx := context.WithoutCancel(w.ctx)
	sc, err := w.r.cfg.Backups.Schedule(ctx, w.p.ID)
	if err != nil || sc.Keep <= 0 {
		return
	}
	all, err := w.r.cfg.Backups.Backups(ctx, w.p.ID)
	if err != nil {
		return
	}
	good := 0
	for _, b := range all { // newest first
		if !b.Good() || b.Reason != "schedule" {
			continue
		}
		good++
		if good > sc.Keep {
			if err := w.r.deleteBackup(ctx, b.ID); err == nil {
				w.log.Printf("backup %d deleted (the schedule keeps %d)", b.ID, sc.Keep)
			}
		}
	}
}

// restoreJob is the restore job's pipeline.
func (w *work) restoreJob() error {
	b, file, err := w.r.cfg.Backups.Backup(w.ctx, w.req.Backup)
	if err != nil {
		return err
	}
	t := dbTools[b.Kind]
	run, closeFn, err := w.dbHost(true)
	if err != nil {
		return err
	}
	defer closeFn()
	return w.step(stepRestore, func() (string, error) {
		path := filepath.Join(w.r.cfg.DataDir, file)
		// Checked whole before anything is overwritten, and again as it
		// streams.
		if err := verifyBackup(path, b.SHA256); err != nil {
			return "", err
		}
		key, err := w.r.backupKey(w.ctx, b)
		if err != nil {
			return "", err
		}
		in, err := openBackup(path, b.SHA256, key, backupIdent(b))
		if err != nil {
			return "", err
		}
		defer in.Close()
		w.log.Printf("restoring backup %d of %s (%s, %s) into %s with %s", b.ID, b.Platform, b.Started.Format(time.RFC3339), byteSize(b.Size), container(w.d), t.tool)
		start := time.Now()
		w.changed = true
		cr := &countReader{r: in}
		if err := run(w.ctx, t.restore, cr, io.Discard); err != nil {
			return "", fmt.Errorf("%s: %w (the database may now hold part of the backup: run the restore again)", t.tool, err)
		}
		took := time.Since(start).Round(100 * time.Millisecond)
		w.job.Summary = fmt.Sprintf("Backup %d of %s restored into %s (%s in %s).", b.ID, b.Platform, w.p.Name, byteSize(cr.n), took)
		return fmt.Sprintf("%s in %s", byteSize(cr.n), took), nil
	})
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// finalBackup is the destroy's backup hook: unless declined, or the
// platform was never deployed (it has no data), the destroy stops until a
// backup is stored and verified.
func (w *work) finalBackup() error {
	want := w.p.DeployedRevision > 0 && w.r.cfg.Backups != nil
	if w.req.FinalBackup != nil {
		want = *w.req.FinalBackup
	}
	return w.step(stepBackup, func() (string, error) {
		if !want {
			if w.req.FinalBackup != nil {
				w.log.Line("No final backup: declined.")
				return "declined", errSkipped
			}
			w.log.Line("No final backup: the platform holds no data.")
			return "no data", errSkipped
		}
		if w.r.cfg.Backups == nil {
			return "", myt.Errorf(myt.EINVALID, "This MyT server keeps no backups: destroy without a final backup.")
		}
		run, closeFn, err := w.dbHost(false)
		if err != nil {
			return "", fmt.Errorf("final backup: %w", err)
		}
		defer closeFn()
		b, err := w.takeBackup(run, "before destroy", w.req.Encrypt)
		if err != nil {
			return "", fmt.Errorf("final backup (the destroy did not start; decline the backup to destroy anyway): %w", err)
		}
		return fmt.Sprintf("backup %d, %s, verified", b.ID, byteSize(b.Size)), nil
	})
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
