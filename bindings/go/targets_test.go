package harvbk

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The S3 and NFS tests run against the real test servers the ctest fixtures
// start (tests/s3/s3env.sh, tests/nfs/nfsenv.sh). Without them they are
// skipped, unless HARVBK_GO_REQUIRE names them ("s3", "nfs", "s3,nfs"):
// then a missing server is a failure.

func requireServer(t *testing.T, what string) {
	t.Helper()
	for _, w := range strings.Split(os.Getenv("HARVBK_GO_REQUIRE"), ",") {
		if w == what {
			t.Fatalf("the %s test server is required (HARVBK_GO_REQUIRE) but not configured", what)
		}
	}
	t.Skipf("no %s test server (run through ctest: go/s3, go/nfs)", what)
}

// s3Env reads the KEY=VALUE file of tests/s3/s3env.sh (HARVBK_TEST_S3_ENV).
func s3Env(t *testing.T) map[string]string {
	path := os.Getenv("HARVBK_TEST_S3_ENV")
	if path == "" {
		requireServer(t, "s3")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("S3 env file: %v", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	secret, err := os.ReadFile(env["HARVBK_TEST_S3_SECRET_FILE"])
	if err != nil {
		t.Fatalf("S3 secret: %v", err)
	}
	env["secret"] = strings.TrimSpace(string(secret))
	return env
}

// roundTrip backs a two-disk VM up into the context's target, restores it,
// verifies, backs up again (deduplicated) and deletes.
func roundTrip(t *testing.T, c *Context, dir string) {
	ctx := context.Background()
	vm, err := NewVM("default", "web")
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	disks := map[string][]byte{}
	for i, name := range []string{"root", "data"} {
		path := filepath.Join(dir, name+".raw")
		disks[name] = makeDisk(t, path, 5<<20+i*12345, int64(50+i))
		if err := vm.AddDisk(name, path); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Backup(ctx, vm, "web-1", nil); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	info, err := c.BackupInfo("default", "web-1")
	if err != nil || info.State != "Ready" || info.UploadedBytes == 0 || len(info.Volumes) != 2 {
		t.Fatalf("BackupInfo: %+v %v", info, err)
	}
	if err := c.Backup(ctx, vm, "web-2", nil); err != nil {
		t.Fatalf("Backup 2: %v", err)
	}
	info2, _ := c.BackupInfo("default", "web-2")
	if info2.UploadedBytes >= info.UploadedBytes/10 {
		t.Fatalf("second backup uploaded %d bytes (first %d): not deduplicated",
			info2.UploadedBytes, info.UploadedBytes)
	}
	into := filepath.Join(dir, "restore")
	if err := c.Restore(ctx, "default", "web-1", RestoreOptions{NewVM: "default/web-copy", Into: into}); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	for name, data := range disks {
		mustEqualFile(t, filepath.Join(into, name+".raw"), data)
	}
	if err := c.VerifyBackup(ctx, "default", "web-2", nil); err != nil {
		t.Fatalf("VerifyBackup: %v", err)
	}
	for _, b := range []string{"web-1", "web-2"} {
		if err := c.DeleteBackup("default", b); err != nil {
			t.Fatalf("DeleteBackup: %v", err)
		}
	}
	list, err := c.Backups()
	if err != nil || len(list) != 0 {
		t.Fatalf("Backups after delete: %+v %v", list, err)
	}
}

func uniquePrefix() string { return fmt.Sprintf("go-%d-%d", os.Getpid(), time.Now().UnixNano()) }

func TestS3RoundTrip(t *testing.T) {
	env := s3Env(t)
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			dir := t.TempDir()
			c, err := Open(filepath.Join(dir, "state"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			endpoint := env["HARVBK_TEST_S3_ENDPOINT"]
			opts := []TargetOption{}
			if tls {
				endpoint = env["HARVBK_TEST_S3_ENDPOINT_TLS"]
				opts = append(opts, WithCACertFile(env["HARVBK_TEST_S3_CA"]))
			}
			opts = append(opts, WithS3(endpoint, env["HARVBK_TEST_S3_REGION"],
				env["HARVBK_TEST_S3_ACCESS_KEY_ID"], env["secret"]), WithChunkSize(1<<20))
			url := "s3://" + env["HARVBK_TEST_S3_BUCKET"] + "/" + uniquePrefix()
			if err := c.SetTarget(url, opts...); err != nil {
				t.Fatalf("SetTarget: %v", err)
			}
			cfg, err := c.Target()
			if err != nil || cfg.URL != url || cfg.Endpoint != endpoint ||
				cfg.SecretAccessKey != "" {
				t.Fatalf("Target: %+v %v", cfg, err)
			}
			roundTrip(t, c, dir)
		})
	}
	// a wrong secret: the target refuses, the message never quotes it
	dir := t.TempDir()
	c, err := Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wrong := "wrong" + env["secret"]
	err = c.SetTarget("s3://"+env["HARVBK_TEST_S3_BUCKET"]+"/"+uniquePrefix(),
		WithS3(env["HARVBK_TEST_S3_ENDPOINT"], env["HARVBK_TEST_S3_REGION"],
			env["HARVBK_TEST_S3_ACCESS_KEY_ID"], wrong))
	if err == nil || strings.Contains(err.Error(), wrong) {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestNFSRoundTrip(t *testing.T) {
	url := os.Getenv("HARVBK_TEST_NFS_URL")
	if url == "" {
		requireServer(t, "nfs")
	}
	export := os.Getenv("HARVBK_TEST_NFS_EXPORT_DIR")
	dir := t.TempDir()
	c, err := Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub := uniquePrefix()
	if err := c.SetTarget(url+"/"+sub, WithChunkSize(1<<20)); err != nil {
		t.Fatalf("SetTarget: %v", err)
	}
	// the store is on the server's side of the export
	if export != "" {
		if _, err := os.Stat(filepath.Join(export, sub)); err != nil {
			t.Fatalf("store not in the export: %v", err)
		}
		defer os.RemoveAll(filepath.Join(export, sub))
	}
	roundTrip(t, c, dir)
}

// An encrypted store on S3 under a session key: round trip in two contexts,
// no plaintext in the objects (read from the S3 server's data directory), a
// wrong key is ErrKey and changes no object.
func TestS3Encrypted(t *testing.T) {
	env := s3Env(t)
	dir := t.TempDir()
	prefix := uniquePrefix()
	url := "s3://" + env["HARVBK_TEST_S3_BUCKET"] + "/" + prefix
	s3 := WithS3(env["HARVBK_TEST_S3_ENDPOINT"], env["HARVBK_TEST_S3_REGION"],
		env["HARVBK_TEST_S3_ACCESS_KEY_ID"], env["secret"])
	// s3rver keeps the objects under DIR/data/BUCKET/ (tests/s3/s3env.sh)
	objects := filepath.Join(filepath.Dir(os.Getenv("HARVBK_TEST_S3_ENV")), "data",
		env["HARVBK_TEST_S3_BUCKET"], prefix)
	raw := secretBytes(t, 32)
	disk := filepath.Join(dir, "root.raw")
	data := makeDisk(t, disk, 5<<20+99, 31)
	must := mustKey(t)
	ctx := context.Background()

	c := openCtx(t, filepath.Join(dir, "a"))
	if err := c.SetTarget(url, s3, WithKey(must(KeyFromBytes(raw))), WithChunkSize(1<<20)); err != nil {
		t.Fatalf("SetTarget: %v", err)
	}
	if cfg, err := c.Target(); err != nil || !cfg.Encrypt || cfg.URL != url {
		t.Fatalf("Target: %+v %v", cfg, err)
	}
	if err := c.Backup(ctx, secretVM(t, "web", disk), "web-1", nil); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	ks, err := c.StoreKeys(StoreTarget)
	if err != nil || !ks.Encrypted || !ks.Unlocked || !hex32.MatchString(ks.Fingerprint) {
		t.Fatalf("StoreKeys: %+v %v", ks, err)
	}
	before := treeOf(t, objects)
	chunks := 0
	for p := range before {
		if strings.HasPrefix(p, "chunks") {
			chunks++
		}
	}
	if chunks < 5 {
		t.Fatalf("%d chunk files under %s: %v", chunks, objects, before)
	}
	all := allBytes(t, objects)
	if !bytes.Contains(all, []byte("aes-256-gcm")) || bytes.Contains(all, []byte(metaSecret)) ||
		bytes.Contains(all, raw) || bytes.Contains(all, data[:64]) ||
		bytes.Contains(all, data[len(data)-4096:len(data)-4032]) {
		t.Fatal("plaintext (or no encrypted store) in the bucket")
	}

	c2 := openCtx(t, filepath.Join(dir, "b"))
	wantCode(t, c2.SetTarget(url, s3, WithKey(must(KeyFromBytes(secretBytes(t, 32))))), CodeKey)
	if after := treeOf(t, objects); !reflect.DeepEqual(before, after) {
		t.Fatal("a wrong key changed the bucket")
	}
	if err := c2.SetTarget(url, s3, WithKey(must(KeyFromBytes(raw)))); err != nil {
		t.Fatal(err)
	}
	restoreEqual(t, c2, false, "web-1", filepath.Join(dir, "r"), data)
	if err := c2.DeleteBackup("default", "web-1"); err != nil {
		t.Fatal(err)
	}
}
