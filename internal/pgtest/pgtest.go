// Package pgtest starts real PostgreSQL servers for tests: initdb into a
// temporary directory, postgres as a child process on a free loopback port,
// and helpers to run SQL against it. Tests that need PostgreSQL skip when no
// server binaries are installed, and fail instead when
// SLUICE_TEST_REQUIRE_CLIENTS=1 (as in CI, where scripts/test installs
// Debian's postgresql package).
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartTimeout bounds how long Start waits for a server to accept
// connections.
const StartTimeout = 60 * time.Second

// Option configures a server.
type Option func(*options)

type options struct {
	settings map[string]string
	durable  bool
}

// WithSetting sets a server parameter in postgresql.conf, e.g.
// WithSetting("default_transaction_read_only", "on") to play a read-only
// standby. It is not passed on the command line, which would take
// precedence over ALTER SYSTEM: a test can change it later with ALTER
// SYSTEM and pg_reload_conf() (a standby being promoted). A later setting of
// the same name wins.
func WithSetting(name, value string) Option {
	return func(o *options) { o.settings[name] = value }
}

// Durable keeps fsync on (initdb without -N, postgres with fsync,
// synchronous_commit and full_page_writes at their defaults), for tests
// that crash the machine's view of the server and want what it promised.
func Durable() Option {
	return func(o *options) { o.durable = true }
}

// Server is one PostgreSQL server owned by a test. Its methods may be
// called from several goroutines.
type Server struct {
	bindir  string
	dir     string // the temporary directory holding everything below
	dataDir string
	sockDir string
	logPath string
	port    int
	cred    *syscall.Credential

	mu   sync.Mutex
	proc *process // nil while stopped
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, set before done closes
}

// Start creates a database cluster and starts a server on it; the test's
// cleanup kills the server and removes its files, whether the test passed
// or not. The superuser is "postgres", authentication is trust, and the
// server listens on 127.0.0.1 only.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{settings: map[string]string{}}
	for _, opt := range opts {
		opt(&o)
	}
	bindir, err := FindBinaries()
	if err != nil {
		if os.Getenv("SLUICE_TEST_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("pgtest: %v (SLUICE_TEST_REQUIRE_CLIENTS=1)", err)
		}
		t.Skipf("pgtest: %v; install PostgreSQL (Debian: apt-get install postgresql) to run this test", err)
	}
	cred, err := credential()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	dir, err := makeDir(cred)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	s := &Server{
		bindir:  bindir,
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		sockDir: filepath.Join(dir, "sock"),
		logPath: filepath.Join(dir, "server.log"),
		cred:    cred,
	}
	t.Cleanup(s.cleanup)
	if err := os.Mkdir(s.sockDir, 0o700); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := s.chown(s.sockDir); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := s.initdb(o.durable); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	settings := map[string]string{
		"unix_socket_directories": s.sockDir,
		"max_connections":         "100",
		"shared_buffers":          "32MB",
		"log_min_messages":        "warning",
		"log_line_prefix":         "%m [%p] ",
		"logging_collector":       "off",
		"autovacuum":              "off",
		"max_wal_size":            "1GB",
		"checkpoint_timeout":      "30min",
	}
	if !o.durable {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range o.settings {
		settings[k] = v
	}
	if err := s.writeSettings(settings); err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	// The free port is found by binding :0 and closing it, which another
	// process may take in between: try a few ports before giving up.
	for attempt := 0; ; attempt++ {
		s.port, err = freePort()
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		err = s.start()
		if err == nil {
			return s
		}
		if attempt == 2 || !strings.Contains(s.Log(), "could not bind") {
			t.Fatalf("pgtest: %v\nserver log:\n%s", err, s.Log())
		}
	}
}

// FindBinaries returns the directory holding initdb and postgres: that of
// pg_config --bindir when it has them, else the highest version under
// /usr/lib/postgresql (where Debian installs them, off PATH).
func FindBinaries() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestVersion := "", -1.0
	for _, dir := range dirs {
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		if err != nil || !has(dir) {
			continue
		}
		if v > bestVersion {
			best, bestVersion = dir, v
		}
	}
	if best == "" {
		return "", errors.New("no PostgreSQL server binaries (initdb, postgres) found: pg_config --bindir and /usr/lib/postgresql/*/bin have none")
	}
	return best, nil
}

// credential returns whom to run initdb and postgres as: nobody else when
// not root, and the postgres system user when root, since both refuse to
// run as root.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and initdb refuses root: need a postgres system user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user's uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user's gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// makeDir creates the server's own directory. t.TempDir is not used: its
// parents are root's and 0700, which the postgres user cannot traverse.
func makeDir(cred *syscall.Credential) (string, error) {
	parent := os.TempDir()
	if cred != nil && !traversable(parent) {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "sluice-pgtest-")
	if err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// traversable reports whether others may search dir and all its parents.
func traversable(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	return os.Chown(path, int(s.cred.Uid), int(s.cred.Gid))
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bindir, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "TZ=UTC")
	cmd.SysProcAttr = sysProcAttr(s.cred)
	return cmd
}

func (s *Server) initdb(durable bool) error {
	args := []string{"-D", s.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions"}
	if !durable {
		args = append(args, "-N")
	}
	out, err := s.command("initdb", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

// writeSettings appends settings to postgresql.conf, where they take
// precedence over initdb's and yield to ALTER SYSTEM's.
func (s *Server) writeSettings(settings map[string]string) error {
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("\n# pgtest\n")
	for _, k := range names {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(settings[k], "'", "''"))
	}
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("server is running already")
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	args := []string{"-D", s.dataDir, "-p", strconv.Itoa(s.port), "-k", s.sockDir, "-c", "listen_addresses=127.0.0.1"}
	cmd := s.command("postgres", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	// The process's owner is the Server: stop and cleanup wait for this
	// goroutine by waiting for done.
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.proc = p

	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, s.DSN())
		ccancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-p.done:
			s.proc = nil
			return fmt.Errorf("postgres exited: %v", p.err)
		case <-ctx.Done():
			s.kill(p)
			s.proc = nil
			return fmt.Errorf("postgres did not accept connections within %v: %v", StartTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Start starts the stopped server again on the same port and data
// directory.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("pgtest: restart: %v\nserver log:\n%s", err, s.Log())
	}
}

// Stop shuts the server down with a fast shutdown (SIGINT: sessions are
// ended, the checkpoint is written) and waits until it has exited.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		t.Fatalf("pgtest: stop: server is not running")
	}
	s.proc = nil
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("pgtest: stop: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		s.kill(p)
		t.Fatalf("pgtest: stop: postgres did not exit within 30s of SIGINT; killed\nserver log:\n%s", s.Log())
	}
}

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// kill ends the postmaster and its backends at once, and waits for it.
func (s *Server) kill(p *process) {
	// SIGQUIT is PostgreSQL's immediate shutdown: the postmaster ends its
	// children too, which SIGKILL to it alone would leave behind.
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	killGroup(p.cmd.Process.Pid)
	<-p.done
}

func (s *Server) cleanup() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		s.kill(p)
	}
	os.RemoveAll(s.dir)
}

// Port returns the TCP port the server listens on (on 127.0.0.1).
func (s *Server) Port() int { return s.port }

// HostPort returns "127.0.0.1:port", for building multi-host DSNs.
func (s *Server) HostPort() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// DSN returns a URL connecting as the superuser to the postgres database.
func (s *Server) DSN() string {
	return "postgres://postgres@" + s.HostPort() + "/postgres?sslmode=disable"
}

// DataDir returns the cluster's data directory.
func (s *Server) DataDir() string { return s.dataDir }

// Log returns what the server wrote to its log so far.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	return string(bytes.TrimSpace(b))
}

// Conn connects to the server; the connection is closed when the test ends.
func (s *Server) Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs sql (several statements when there are no args) on a new
// connection, failing the test on error.
func (s *Server) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if err := s.with(func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, sql, args...)
		return err
	}); err != nil {
		t.Fatalf("pgtest: exec %q: %v", sql, err)
	}
}

// QueryInt runs a query returning one integer (NULL fails the test).
func (s *Server) QueryInt(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.with(func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, sql, args...).Scan(&n)
	}); err != nil {
		t.Fatalf("pgtest: query %q: %v", sql, err)
	}
	return n
}

// QueryString runs a query returning one text value (NULL fails the test).
func (s *Server) QueryString(t testing.TB, sql string, args ...any) string {
	t.Helper()
	var v string
	if err := s.with(func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, sql, args...).Scan(&v)
	}); err != nil {
		t.Fatalf("pgtest: query %q: %v", sql, err)
	}
	return v
}

func (s *Server) with(f func(context.Context, *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return f(ctx, conn)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
