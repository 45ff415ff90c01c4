// Command ingest is MyT's ingestion benchmark. In one run, against one
// RabbitMQ and one database, with one load (N JSON messages from P MQTT
// publishers at QoS 1), it measures side by side:
//
//   - the raw broker drain rate: an MQTT subscriber that only counts, and an
//     AMQP consumer on myt.ingest that only counts and acks (the worker's
//     ceiling);
//   - the MyT worker (the myt binary) into the database, without and with a
//     trivial Python handler;
//   - Telegraf (mqtt_consumer -> the same database), when a telegraf binary
//     is given;
//   - one fault round per consumer: SIGKILL once mid-run, restart, count
//     what was lost.
//
// For each: msgs/s end to end, CPU seconds of the consumer processes, their
// peak RSS, lost and duplicated messages. Connection secrets come from the
// environment (never argv): BENCH_AMQP_URL, BENCH_MQTT_ADDR,
// BENCH_MQTT_USER, BENCH_MQTT_PASSWORD, BENCH_PG_DSN. See README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
)

type env struct {
	amqpURL, mqttAddr, user, pass, pgDSN string
}

func mustEnv(name string) string {
	v := os.Getenv(name)
	if v == "" {
		log.Fatalf("environment variable %s is required (see bench/ingest/README.md)", name)
	}
	return v
}

type result struct {
	name     string
	rate     float64
	cpu      float64
	rssMB    float64
	lost     int
	dup      int
	seconds  float64
	settings string
	note     string
	msgs     int     // when not -n
	broker   float64 // CPU seconds of the broker (beam.smp) during the round
	db       float64 // CPU seconds of the database server (postgres)
}

// cpuStart holds broker and database CPU seconds at the start of a round.
var cpuStart [2]float64

// serverDelta is the broker and database CPU used since the round began.
// Read it before the consumer stops: a database backend's CPU disappears
// with its connection.
func serverDelta() (broker, db float64) {
	return serverCPU("beam.smp") - cpuStart[0], serverCPU("postgres") - cpuStart[1]
}

// serverCPU sums user+sys CPU seconds of all processes with this command
// name (the broker and database run on the same machine here).
func serverCPU(comm string) float64 {
	total := 0.0
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		c, err := os.ReadFile(d + "/comm")
		if err != nil || strings.TrimSpace(string(c)) != comm {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		st := string(b)
		f := strings.Fields(st[strings.LastIndex(st, ")")+2:])
		u, _ := strconv.ParseFloat(f[11], 64)
		sy, _ := strconv.ParseFloat(f[12], 64)
		total += (u + sy) / 100
	}
	return total
}

var (
	n          = flag.Int("n", 200000, "messages per round")
	publishers = flag.Int("publishers", 10, "MQTT publishers (QoS 1)")
	mytBin     = flag.String("myt", "", "myt binary (default: go build ./cmd/myt into a temp dir)")
	telegraf   = flag.String("telegraf", "", "telegraf binary built with inputs.mqtt_consumer and outputs.postgresql (optional)")
	rounds     = flag.String("rounds", "mqtt-drain,amqp-drain,myt,myt-python,telegraf,myt-kill,telegraf-kill", "rounds to run, in order")
	batch      = flag.Int("batch", 1000, "MyT batch.size")
	prefetch   = flag.Int("prefetch", 4000, "MyT amqp.prefetch")
	tgBatch    = flag.Int("telegraf-batch", 1000, "Telegraf metric_batch_size")
	tgUndeliv  = flag.Int("telegraf-undelivered", 5000, "Telegraf max_undelivered_messages (0: 2 x -telegraf-batch); 5000 measured best here")
	backlog    = flag.Int("backlog", 1000000, "messages preloaded (over AMQP) for the myt-backlog round")
)

func main() {
	flag.Parse()
	e := env{amqpURL: mustEnv("BENCH_AMQP_URL"), mqttAddr: mustEnv("BENCH_MQTT_ADDR"), user: mustEnv("BENCH_MQTT_USER"),
		pass: mustEnv("BENCH_MQTT_PASSWORD"), pgDSN: mustEnv("BENCH_PG_DSN")}
	if *mytBin == "" {
		dir, _ := os.MkdirTemp("", "bench-myt-")
		*mytBin = filepath.Join(dir, "myt")
		if out, err := exec.Command("go", "build", "-o", *mytBin, "github.com/myt-iot/myt/cmd/myt").CombinedOutput(); err != nil {
			log.Fatalf("go build ./cmd/myt: %v\n%s", err, out)
		}
	}
	fmt.Printf("load: %d JSON messages, %d MQTT publishers, QoS 1, topic bench/<device>/env; database: PostgreSQL\n", *n, *publishers)
	var results []result
	for _, r := range strings.Split(*rounds, ",") {
		var res result
		var err error
		cpuStart = [2]float64{serverCPU("beam.smp"), serverCPU("postgres")}
		switch strings.TrimSpace(r) {
		case "mqtt-drain":
			res, err = mqttDrain(e)
		case "amqp-drain":
			res, err = amqpDrain(e)
		case "myt":
			res, err = mytRound(e, "", false)
		case "myt-python":
			res, err = mytRound(e, "def process(msg):\n    return msg['payload']\n", false)
		case "myt-kill":
			res, err = mytRound(e, "", true)
		case "myt-backlog":
			res, err = backlogRound(e)
		case "telegraf", "telegraf-kill":
			if *telegraf == "" {
				fmt.Printf("round %s skipped: no -telegraf binary\n", r)
				continue
			}
			res, err = telegrafRound(e, r == "telegraf-kill")
		default:
			log.Fatalf("unknown round %q", r)
		}
		if err != nil {
			log.Fatalf("round %s: %v", r, err)
		}
		if res.broker == 0 {
			res.broker, res.db = serverDelta()
		}
		fmt.Printf("  %-34s %9.0f msg/s  cpu %6.2fs  rss %6.1f MB  lost %d  dup %d\n",
			res.name, res.rate, res.cpu, res.rssMB, res.lost, res.dup)
		results = append(results, res)
	}
	fmt.Println()
	fmt.Printf("%-40s %8s %8s %8s %7s %7s %6s %6s %10s %10s\n", "contender", "msg/s", "seconds", "cpu s", "µs/msg", "rss MB", "lost", "dup", "broker µs", "db µs")
	for _, r := range results {
		cpu, us, rss := "-", "-", "-"
		if r.cpu > 0 {
			msgs := *n
			if r.msgs > 0 {
				msgs = r.msgs
			}
			cpu, us, rss = fmt.Sprintf("%.2f", r.cpu), fmt.Sprintf("%.1f", r.cpu/float64(msgs)*1e6), fmt.Sprintf("%.1f", r.rssMB)
		}
		msgs := float64(*n)
		if r.msgs > 0 {
			msgs = float64(r.msgs)
		}
		fmt.Printf("%-40s %8.0f %8.2f %8s %7s %7s %6d %6d %10.1f %10.1f\n", r.name, r.rate, r.seconds, cpu, us, rss, r.lost, r.dup,
			r.broker/msgs*1e6, r.db/msgs*1e6)
	}
	fmt.Println("\nµs/msg: consumer CPU per message; broker µs / db µs: CPU of beam.smp / postgres per message during the round")
	fmt.Println("(includes the publishing side for the broker; the backlog round includes its AMQP preload).")
	fmt.Println("\nsettings:")
	for _, r := range results {
		if r.settings != "" {
			fmt.Printf("  %s: %s\n", r.name, r.settings)
		}
		if r.note != "" {
			fmt.Printf("  %s: %s\n", r.name, r.note)
		}
	}
}

func payload(seq int) []byte {
	b, _ := json.Marshal(map[string]any{
		"seq": seq, "temp": 20 + float64(seq%1000)/100, "hum": 40 + seq%30, "ok": seq%2 == 0,
		"ts": time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Millisecond).UnixMilli(),
	})
	return b
}

// publish sends seq 0..n-1 from P MQTT clients at QoS 1 and returns when
// every PUBACK arrived.
func publish(e env) error {
	var wg sync.WaitGroup
	errs := make(chan error, *publishers)
	per := (*n + *publishers - 1) / *publishers
	for p := 0; p < *publishers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			opts := mqtt.NewClientOptions().AddBroker("tcp://" + e.mqttAddr).SetClientID(fmt.Sprintf("bench-pub-%d-%d", p, time.Now().UnixNano())).
				SetUsername(e.user).SetPassword(e.pass).SetCleanSession(true).SetAutoReconnect(false)
			c := mqtt.NewClient(opts)
			if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
				errs <- fmt.Errorf("mqtt connect: %v", tok.Error())
				return
			}
			defer c.Disconnect(100)
			var toks []mqtt.Token
			for s := p * per; s < min((p+1)*per, *n); s++ {
				toks = append(toks, c.Publish(fmt.Sprintf("bench/dev-%d/env", p), 1, false, payload(s)))
				if len(toks) == 200 {
					for _, t := range toks {
						t.Wait()
					}
					toks = toks[:0]
				}
			}
			for _, t := range toks {
				t.Wait()
			}
		}(p)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func mqttDrain(e env) (result, error) {
	var count atomic.Int64
	done := make(chan struct{})
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + e.mqttAddr).SetClientID(fmt.Sprintf("bench-sub-%d", time.Now().UnixNano())).
		SetUsername(e.user).SetPassword(e.pass).SetCleanSession(true).SetOrderMatters(false)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		return result{}, fmt.Errorf("mqtt connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe("bench/#", 1, func(mqtt.Client, mqtt.Message) {
		if count.Add(1) == int64(*n) {
			close(done)
		}
	}); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		return result{}, fmt.Errorf("subscribe: %v", tok.Error())
	}
	start := time.Now()
	if err := publish(e); err != nil {
		return result{}, err
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
	}
	d := time.Since(start).Seconds()
	return result{name: "raw MQTT subscriber (count only)", rate: float64(count.Load()) / d, seconds: d,
		lost: *n - int(count.Load()), settings: "QoS 1 subscription; broker mqtt.prefetch as configured"}, nil
}

// topology declares myt.ingest as the worker does and purges it.
func topology(e env) error {
	conn, err := amqp.Dial(e.amqpURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare("myt.dead", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare("myt.ingest", true, false, false, false, amqp.Table{"x-queue-type": "quorum",
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "myt.dead"}); err != nil {
		return err
	}
	if err := ch.QueueBind("myt.ingest", "bench.#", "amq.topic", false, nil); err != nil {
		return err
	}
	_, err = ch.QueuePurge("myt.ingest", false)
	return err
}

func unbind(e env) {
	if conn, err := amqp.Dial(e.amqpURL); err == nil {
		if ch, err := conn.Channel(); err == nil {
			ch.QueueUnbind("myt.ingest", "bench.#", "amq.topic", nil)
			ch.QueuePurge("myt.ingest", false)
		}
		conn.Close()
	}
}

func amqpDrain(e env) (result, error) {
	if err := topology(e); err != nil {
		return result{}, err
	}
	defer unbind(e)
	conn, err := amqp.Dial(e.amqpURL)
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	ch.Qos(*prefetch, 0, false)
	dl, err := ch.Consume("myt.ingest", "bench-drain", false, false, false, false, nil)
	if err != nil {
		return result{}, err
	}
	count := 0
	done := make(chan struct{})
	go func() {
		var last uint64
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case d := <-dl:
				count++
				last = d.DeliveryTag
				if count%*batch == 0 {
					ch.Ack(last, true)
				}
				if count == *n {
					ch.Ack(last, true)
					close(done)
					return
				}
			case <-tick.C:
				if last > 0 {
					ch.Ack(last, true)
				}
			}
		}
	}()
	start := time.Now()
	if err := publish(e); err != nil {
		return result{}, err
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
	}
	d := time.Since(start).Seconds()
	return result{name: "raw AMQP consumer on myt.ingest", rate: float64(count) / d, seconds: d, lost: *n - count,
		settings: fmt.Sprintf("prefetch %d, ack multiple every %d or 50 ms", *prefetch, *batch)}, nil
}

func pgCount(ctx context.Context, dsn, q string) (int, int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	var rows, distinct int
	err = conn.QueryRow(ctx, q).Scan(&rows, &distinct)
	return rows, distinct, err
}

func pgExec(dsn, q string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, q)
	return err
}

// usage sums utime+stime (seconds) and peak RSS (MB) of pid and its
// children (the Python handler).
func usage(pid int) (cpu, rss float64) {
	pids := []int{pid}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		if b, err := os.ReadFile(t); err == nil {
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					pids = append(pids, c)
				}
			}
		}
	}
	for _, p := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p)); err == nil {
			s := string(b)
			f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
			u, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			cpu += (u + st) / 100 // USER_HZ
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "VmHWM:") {
					kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
					rss += kb / 1024
				}
			}
		}
	}
	return cpu, rss
}

type consumer struct {
	start func() (*exec.Cmd, error)
	cmd   *exec.Cmd
	cpu   float64 // of killed instances
	rss   float64
}

func (c *consumer) run() error {
	cmd, err := c.start()
	if err != nil {
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.cmd = cmd
	return nil
}

func (c *consumer) stop(kill bool) {
	cpu, rss := usage(c.cmd.Process.Pid)
	c.cpu += cpu
	c.rss = max(c.rss, rss)
	if kill {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	} else {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	}
	c.cmd.Wait()
}

// measure publishes the load while c consumes into table and waits until
// countQ reports n rows (or progress stops for 15 s). With kill, the
// consumer is SIGKILLed once at n/2 rows and restarted.
func measure(e env, c *consumer, countQ string, kill bool) (result, error) {
	if err := c.run(); err != nil {
		return result{}, err
	}
	time.Sleep(2 * time.Second) // connected and subscribed
	start := time.Now()
	pubErr := make(chan error, 1)
	go func() { pubErr <- publish(e) }()
	ctx := context.Background()
	killed := !kill
	lastRows, lastChange := -1, time.Now()
	rows := 0
	// Poll with a cheap count; the exact distinct count is taken once at
	// the end, so the measurement itself loads the database little.
	countOnly := "SELECT count(*), 0 FROM " + countQ[strings.LastIndex(countQ, " ")+1:]
	for {
		if r, _, err := pgCount(ctx, e.pgDSN, countOnly); err == nil {
			rows = r
		}
		if !killed && rows >= *n/2 {
			c.stop(true)
			killed = true
			time.Sleep(200 * time.Millisecond)
			if err := c.run(); err != nil {
				return result{}, err
			}
		}
		if rows != lastRows {
			lastRows, lastChange = rows, time.Now()
		}
		if rows >= *n || time.Since(lastChange) > 15*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if rows < *n {
		elapsed -= 15 * time.Second
	}
	time.Sleep(time.Second) // late duplicates would show now
	rows, distinct, err := pgCount(ctx, e.pgDSN, countQ)
	if err != nil {
		return result{}, err
	}
	if err := <-pubErr; err != nil {
		return result{}, err
	}
	broker, db := serverDelta()
	c.stop(false)
	d := elapsed.Seconds()
	return result{rate: float64(distinct) / d, seconds: d, cpu: c.cpu, rssMB: c.rss, lost: *n - distinct, dup: rows - distinct,
		broker: broker, db: db}, nil
}

func mytRound(e env, handler string, kill bool) (result, error) {
	if err := topology(e); err != nil {
		return result{}, err
	}
	defer unbind(e)
	c, table, err := mytConsumer(e, handler)
	if err != nil {
		return result{}, err
	}
	res, err := measure(e, c, fmt.Sprintf(`SELECT count(*), count(DISTINCT seq) FROM %s`, table), kill)
	name := "MyT worker -> PostgreSQL"
	if handler != "" {
		name += " + Python"
	}
	if kill {
		name += " (SIGKILL once)"
	}
	res.name = name
	res.settings = fmt.Sprintf("batch.size %d, maxWait 100ms, prefetch %d, typed fields (4)", *batch, *prefetch)
	return res, err
}

// mytConsumer writes a worker config (fresh table) and returns how to
// start the worker.
func mytConsumer(e env, handler string) (*consumer, string, error) {
	dir, err := os.MkdirTemp("", "bench-worker-")
	if err != nil {
		return nil, "", err
	}
	u := e.amqpURL
	pw := ""
	if i, j := strings.Index(u, "://"), strings.LastIndex(u, "@"); i > 0 && j > i {
		cred := u[i+3 : j]
		if k := strings.Index(cred, ":"); k >= 0 {
			pw = cred[k+1:]
			u = u[:i+3] + cred[:k] + u[j:]
		}
	}
	os.WriteFile(filepath.Join(dir, "pw"), []byte(pw), 0o600)
	os.WriteFile(filepath.Join(dir, "dsn"), []byte(e.pgDSN), 0o600)
	h := ""
	if handler != "" {
		os.WriteFile(filepath.Join(dir, "handler.py"), []byte(handler), 0o600)
		h = "handler:\n  path: " + filepath.Join(dir, "handler.py") + "\n"
	}
	table := "bench_myt"
	pgExec(e.pgDSN, "DROP TABLE IF EXISTS "+table)
	cfg := fmt.Sprintf(`topicPrefix: bench
amqp:
  urls: [%q]
  passwordFile: %s
  prefetch: %d
  declare: false
batch:
  size: %d
  maxWait: 100ms
database:
  kind: postgres
  dsnFile: %s
  table: %s
  fields: {seq: int, temp: float, hum: int, ok: bool}
%shttp:
  listen: "off"
`, u, filepath.Join(dir, "pw"), *prefetch, *batch, filepath.Join(dir, "dsn"), table, h)
	os.WriteFile(filepath.Join(dir, "worker.yaml"), []byte(cfg), 0o600)
	return &consumer{start: func() (*exec.Cmd, error) {
		cmd := exec.Command(*mytBin, "worker", "--config", filepath.Join(dir, "worker.yaml"), "--log-level", "warn")
		cmd.Stderr = os.Stderr
		return cmd, nil
	}}, table, nil
}

func telegrafRound(e env, kill bool) (result, error) {
	dir, _ := os.MkdirTemp("", "bench-telegraf-")
	defer os.RemoveAll(dir)
	table := "bench_telegraf"
	pgExec(e.pgDSN, "DROP TABLE IF EXISTS "+table)
	conf := fmt.Sprintf(`[agent]
  interval = "1s"
  flush_interval = "100ms"
  metric_batch_size = %d
  metric_buffer_limit = 1000000
  omit_hostname = true
[[inputs.mqtt_consumer]]
  servers = ["tcp://%s"]
  topics = ["bench/#"]
  qos = 1
  client_id = "bench-telegraf"
  persistent_session = true
  username = %q
  password = %q
  max_undelivered_messages = %d
  name_override = %q
  data_format = "json"
  json_time_key = "ts"
  json_time_format = "unix_ms"
[[outputs.postgresql]]
  connection = %q
`, *tgBatch, e.mqttAddr, e.user, e.pass, undelivered(), table, e.pgDSN)
	path := filepath.Join(dir, "telegraf.conf")
	os.WriteFile(path, []byte(conf), 0o600)
	c := &consumer{start: func() (*exec.Cmd, error) {
		cmd := exec.Command(*telegraf, "--config", path, "--quiet")
		cmd.Stderr = os.Stderr
		return cmd, nil
	}}
	// The persistent MQTT session's queue would keep collecting the next
	// rounds' messages: remove it afterwards.
	defer func() {
		if conn, err := amqp.Dial(e.amqpURL); err == nil {
			if ch, err := conn.Channel(); err == nil {
				ch.QueueDelete("mqtt-subscription-bench-telegrafqos1", false, false, false)
			}
			conn.Close()
		}
	}()
	res, err := measure(e, c, fmt.Sprintf(`SELECT count(*), count(DISTINCT seq) FROM %s`, table), kill)
	res.name = "Telegraf -> PostgreSQL"
	if kill {
		res.name += " (SIGKILL once)"
	}
	res.settings = fmt.Sprintf("mqtt_consumer qos 1, max_undelivered_messages %d, metric_batch_size %d, flush 100ms, outputs.postgresql", undelivered(), *tgBatch)
	return res, err
}

// backlogRound preloads -backlog messages over AMQP with no consumer, then
// starts the worker: its drain rate and peak RSS with a large backlog.
func backlogRound(e env) (result, error) {
	if err := topology(e); err != nil {
		return result{}, err
	}
	defer unbind(e)
	conn, err := amqp.Dial(e.amqpURL)
	if err != nil {
		return result{}, err
	}
	ch, _ := conn.Channel()
	ch.Confirm(false)
	var pending []*amqp.DeferredConfirmation
	for s := 0; s < *backlog; s++ {
		c, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "amq.topic", fmt.Sprintf("bench.dev-%d.env", s%10), false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: payload(s)})
		if err != nil {
			return result{}, err
		}
		pending = append(pending, c)
		if len(pending) == 2000 {
			for _, c := range pending {
				c.Wait()
			}
			pending = pending[:0]
		}
	}
	for _, c := range pending {
		c.Wait()
	}
	conn.Close()
	saved := *n
	*n = *backlog
	defer func() { *n = saved }()
	c, table, err := mytConsumer(e, "")
	if err != nil {
		return result{}, err
	}
	res, err := measureBacklog(e, c, fmt.Sprintf(`SELECT count(*), count(DISTINCT seq) FROM %s`, table))
	res.name = fmt.Sprintf("MyT worker, %d backlog", *backlog)
	res.msgs = *backlog
	res.settings = fmt.Sprintf("batch.size %d, prefetch %d: memory is bounded by prefetch, not by the backlog", *batch, *prefetch)
	return res, err
}

func measureBacklog(e env, c *consumer, countQ string) (result, error) {
	start := time.Now()
	if err := c.run(); err != nil {
		return result{}, err
	}
	var rows, distinct int
	lastRows, lastChange := -1, time.Now()
	peak := 0.0
	for {
		if r, d, err := pgCount(context.Background(), e.pgDSN, countQ); err == nil {
			rows, distinct = r, d
		}
		_, rss := usage(c.cmd.Process.Pid)
		peak = max(peak, rss)
		if rows != lastRows {
			lastRows, lastChange = rows, time.Now()
		}
		if distinct >= *n || time.Since(lastChange) > 15*time.Second {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	d := time.Since(start).Seconds()
	broker, db := serverDelta()
	c.stop(false)
	return result{rate: float64(distinct) / d, seconds: d, cpu: c.cpu, rssMB: max(peak, c.rss), lost: *n - distinct, dup: rows - distinct,
		broker: broker, db: db}, nil
}

func undelivered() int {
	if *tgUndeliv > 0 {
		return *tgUndeliv
	}
	return 2 * *tgBatch
}
